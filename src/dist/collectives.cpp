#include "spvit/dist/collectives.h"

#include "spvit/core/autograd_capsule.h"
#include "spvit/core/error.h"

namespace spvit::dist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

struct GatherRowsFunction : public torch::autograd::Function<GatherRowsFunction> {
  static Variable forward(AutogradContext* ctx, const Variable& local, const CommPtr& comm,
                          const std::vector<int64_t>& rows) {
    ctx->saved_data["comm"] = to_capsule(comm);
    ctx->saved_data["rows"] = rows;
    return all_gather_rows(*comm, local, rows);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const CommPtr comm = from_capsule<CommPtr>(ctx->saved_data["comm"]);
    const auto rows = ctx->saved_data["rows"].toIntVector();
    auto grad = grad_outputs[0].contiguous();
    int64_t row_numel = 1;
    for (int64_t d = 1; d < grad.dim(); ++d) row_numel *= grad.size(d);
    auto shape = grad.sizes().vec();
    shape[0] = rows[static_cast<size_t>(comm->rank())];
    auto local_grad = torch::empty(shape, grad.options());
    comm->reduce_scatter(grad, local_grad, rows_to_counts(rows, row_numel), ReduceOp::Sum)->wait();
    return {local_grad, Variable(), Variable()};
  }
};

struct AllReduceSumFunction : public torch::autograd::Function<AllReduceSumFunction> {
  static Variable forward(AutogradContext* ctx, const Variable& x, const CommPtr& comm) {
    ctx->saved_data["comm"] = to_capsule(comm);
    auto y = x.clone();
    comm->all_reduce(y, ReduceOp::Sum)->wait();
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const CommPtr comm = from_capsule<CommPtr>(ctx->saved_data["comm"]);
    auto g = grad_outputs[0].clone();
    comm->all_reduce(g, ReduceOp::Sum)->wait();
    return {g, Variable()};
  }
};

}  // namespace

torch::Tensor gather_rows(const torch::Tensor& local, const CommPtr& comm, const std::vector<int64_t>& rows) {
  SPVIT_CHECK(comm != nullptr, "gather_rows needs a communicator");
  return GatherRowsFunction::apply(local, comm, rows);
}

torch::Tensor all_reduce_sum(const torch::Tensor& x, const CommPtr& comm) {
  if (comm == nullptr || comm->size() == 1) return x;
  return AllReduceSumFunction::apply(x, comm);
}

}  // namespace spvit::dist

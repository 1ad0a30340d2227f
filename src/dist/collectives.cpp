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

// The blocking all-to-all of row blocks (both directions of AllToAllRowsFunction).
torch::Tensor exchange_rows(Communicator& comm, const torch::Tensor& local, const std::vector<int64_t>& send_rows,
                            const std::vector<int64_t>& recv_rows) {
  auto in = local.contiguous();
  int64_t row_numel = 1;
  for (int64_t d = 1; d < in.dim(); ++d) row_numel *= in.size(d);
  int64_t total = 0;
  for (auto r : recv_rows) total += r;
  auto shape = in.sizes().vec();
  shape[0] = total;
  auto out = torch::empty(shape, in.options());
  comm.all_to_all(in, out, rows_to_counts(send_rows, row_numel), rows_to_counts(recv_rows, row_numel))->wait();
  return out;
}

struct AllToAllRowsFunction : public torch::autograd::Function<AllToAllRowsFunction> {
  static Variable forward(AutogradContext* ctx, const Variable& local, const CommPtr& comm,
                          const std::vector<int64_t>& send_rows, const std::vector<int64_t>& recv_rows) {
    ctx->saved_data["comm"] = to_capsule(comm);
    ctx->saved_data["send_rows"] = send_rows;
    ctx->saved_data["recv_rows"] = recv_rows;
    return exchange_rows(*comm, local, send_rows, recv_rows);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const CommPtr comm = from_capsule<CommPtr>(ctx->saved_data["comm"]);
    const auto send_rows = ctx->saved_data["send_rows"].toIntVector();
    const auto recv_rows = ctx->saved_data["recv_rows"].toIntVector();
    return {exchange_rows(*comm, grad_outputs[0], recv_rows, send_rows), Variable(), Variable(), Variable()};
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

torch::Tensor all_to_all_rows(const torch::Tensor& local, const CommPtr& comm, const std::vector<int64_t>& send_rows,
                              const std::vector<int64_t>& recv_rows) {
  SPVIT_CHECK(comm != nullptr, "all_to_all_rows needs a communicator");
  SPVIT_CHECK(static_cast<int>(send_rows.size()) == comm->size() && static_cast<int>(recv_rows.size()) == comm->size(),
              "all_to_all_rows: ", send_rows.size(), " send and ", recv_rows.size(), " receive blocks for ",
              comm->size(), " ranks");
  int64_t sending = 0;
  for (auto r : send_rows) sending += r;
  SPVIT_CHECK(local.dim() >= 1 && local.size(0) == sending, "all_to_all_rows: rank ", comm->rank(), " holds ",
              local.dim() ? local.size(0) : 0, " rows but its send blocks add up to ", sending);
  return AllToAllRowsFunction::apply(local, comm, send_rows, recv_rows);
}

torch::Tensor all_reduce_sum(const torch::Tensor& x, const CommPtr& comm) {
  if (comm == nullptr || comm->size() == 1) return x;
  return AllReduceSumFunction::apply(x, comm);
}

}  // namespace spvit::dist

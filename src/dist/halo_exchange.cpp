#include "spvit/core/autograd_capsule.h"
#include "spvit/core/error.h"
#include "spvit/dist/collectives.h"

namespace spvit::dist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

constexpr int kTagToPrevious = 401;  // rows travelling to rank - 1
constexpr int kTagToNext = 402;      // rows travelling to rank + 1

// Sends `to_prev` to rank-1 and `to_next` to rank+1; returns {from_prev, from_next} (zeros at the borders).
// Two grouped shifts (Communicator::send_recv), so that NCCL cannot deadlock on the pairs whatever the ranks' order.
std::pair<torch::Tensor, torch::Tensor> swap_edges(Communicator& comm, const torch::Tensor& to_prev,
                                                   const torch::Tensor& to_next) {
  const int me = comm.rank(), n = comm.size();
  const int prev = me > 0 ? me - 1 : -1, next = me + 1 < n ? me + 1 : -1;
  auto from_prev = torch::zeros_like(to_next);
  auto from_next = torch::zeros_like(to_prev);
  auto towards_prev = comm.send_recv(to_prev, prev, from_next, next, kTagToPrevious);
  auto towards_next = comm.send_recv(to_next, next, from_prev, prev, kTagToNext);
  towards_prev->wait();
  towards_next->wait();
  return {from_prev, from_next};
}

struct HaloExchangeFunction : public torch::autograd::Function<HaloExchangeFunction> {
  static Variable forward(AutogradContext* ctx, const Variable& x, const CommPtr& comm, int64_t dim, int64_t halo) {
    ctx->saved_data["comm"] = to_capsule(comm);
    ctx->saved_data["dim"] = dim;
    ctx->saved_data["halo"] = halo;
    const int64_t rows = x.size(dim);
    auto top = x.narrow(dim, 0, halo).contiguous();
    auto bottom = x.narrow(dim, rows - halo, halo).contiguous();
    auto [from_prev, from_next] = swap_edges(*comm, top, bottom);
    return torch::cat({from_prev, x, from_next}, dim);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const CommPtr comm = from_capsule<CommPtr>(ctx->saved_data["comm"]);
    const int64_t dim = ctx->saved_data["dim"].toInt(), halo = ctx->saved_data["halo"].toInt();
    const auto& g = grad_outputs[0];
    const int64_t rows = g.size(dim) - 2 * halo;
    // The first halo rows were rank-1's bottom rows: their gradient goes back there (and vice versa).
    auto to_prev = g.narrow(dim, 0, halo).contiguous();
    auto to_next = g.narrow(dim, halo + rows, halo).contiguous();
    auto [from_prev, from_next] = swap_edges(*comm, to_prev, to_next);
    auto grad = g.narrow(dim, halo, rows).clone();
    grad.narrow(dim, 0, halo).add_(from_prev);            // my top rows, used as rank-1's bottom halo
    grad.narrow(dim, rows - halo, halo).add_(from_next);  // my bottom rows, used as rank+1's top halo
    return {grad, Variable(), Variable(), Variable()};
  }
};

}  // namespace

torch::Tensor halo_exchange(const torch::Tensor& x, const CommPtr& comm, int64_t dim, int64_t halo) {
  SPVIT_CHECK(halo >= 0, "halo_exchange: halo must be non-negative, got ", halo);
  if (halo == 0 || comm == nullptr) {
    if (halo == 0) return x;
    auto shape = x.sizes().vec();
    shape[static_cast<size_t>(dim)] = halo;
    auto zeros = torch::zeros(shape, x.options());
    return torch::cat({zeros, x, zeros}, dim);  // one band: the global borders on both sides
  }
  SPVIT_CHECK(x.size(dim) >= halo, "halo_exchange: rank ", comm->rank(), " holds a band of ", x.size(dim),
              " rows, thinner than the halo of ", halo, " rows: use fewer sequence ranks or a larger image");
  return HaloExchangeFunction::apply(x, comm, dim, halo);
}

}  // namespace spvit::dist

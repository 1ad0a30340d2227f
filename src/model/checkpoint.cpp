#include "spvit/model/checkpoint.h"

#include "spvit/core/autograd_capsule.h"

namespace spvit::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;
using BlockFn = std::function<torch::Tensor(const torch::Tensor&)>;

struct CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
  static Variable forward(AutogradContext* ctx, const Variable& x, at::TensorList parameters, const BlockFn& fn) {
    ctx->saved_data["fn"] = to_capsule(fn);
    variable_list saved{x};
    saved.insert(saved.end(), parameters.begin(), parameters.end());
    ctx->save_for_backward(saved);
    return fn(x);  // autograd is off inside forward: no activations are kept
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const BlockFn& fn = from_capsule<BlockFn>(ctx->saved_data["fn"]);
    torch::AutoGradMode enable_grad(true);
    auto x = saved[0].detach().requires_grad_(ctx->needs_input_grad(0));
    auto y = fn(x);  // the recompute
    // A nested (reentrant) backward through the recomputed block, as torch.utils.checkpoint's reentrant variant
    // does: the parameters' gradients reach .grad through their own accumulators, so their hooks (the
    // GradientAverager's bucket hooks) fire exactly once. Returning them as outputs of this function instead
    // (autograd::grad with respect to the parameters) fires those hooks twice on LibTorch >= 2.0, where tensor
    // hooks also run for gradients captured by autograd::grad: a doubled gradient or a bucket reduced too early.
    if (y.requires_grad()) torch::autograd::backward({y}, {grad_outputs[0]});
    variable_list grads(saved.size() + 1);  // x, every parameter (already accumulated), fn: only x's is returned
    if (ctx->needs_input_grad(0)) grads[0] = x.grad();
    return grads;
  }
};

}  // namespace

torch::Tensor checkpoint(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& x,
                         const std::vector<torch::Tensor>& parameters) {
  return CheckpointFunction::apply(x, at::TensorList(parameters), fn);
}

}  // namespace spvit::model

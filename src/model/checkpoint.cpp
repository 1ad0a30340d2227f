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
    auto x = saved[0].detach().requires_grad_(true);
    auto y = fn(x);  // the recompute
    // Differentiate with respect to x and the parameters that are trainable; frozen ones get no gradient.
    variable_list inputs{x};
    std::vector<size_t> positions{0};
    for (size_t i = 1; i < saved.size(); ++i) {
      if (saved[i].requires_grad()) {
        inputs.push_back(saved[i]);
        positions.push_back(i);
      }
    }
    auto computed = torch::autograd::grad({y}, inputs, {grad_outputs[0]}, /*retain_graph=*/false,
                                          /*create_graph=*/false, /*allow_unused=*/true);
    variable_list grads(saved.size() + 1);  // x, every parameter, and fn (never differentiable)
    for (size_t j = 0; j < positions.size(); ++j) grads[positions[j]] = computed[j];
    if (!ctx->needs_input_grad(0)) grads[0] = Variable();
    return grads;
  }
};

}  // namespace

torch::Tensor checkpoint(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& x,
                         const std::vector<torch::Tensor>& parameters) {
  return CheckpointFunction::apply(x, at::TensorList(parameters), fn);
}

}  // namespace spvit::model

#include "spvit/model/checkpoint.h"

#include "spvit/core/autograd_capsule.h"
#include "spvit/core/torch_compat.h"

namespace spvit::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;
using BlockFn = std::function<torch::Tensor(const torch::Tensor&)>;

void save_autocast_state(AutogradContext* ctx) {
  const auto state = compat::AutocastState::current();
  ctx->saved_data["autocast"] = state.enabled;
  ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(state.dtype);
}

// Re-enters the forward's autocast state for the recompute (see compat::AutocastState).
compat::AutocastGuard restore_autocast_state(AutogradContext* ctx) {
  return compat::AutocastGuard(torch::Device(torch::kCUDA),
                               static_cast<torch::ScalarType>(ctx->saved_data["autocast_dtype"].toInt()),
                               ctx->saved_data["autocast"].toBool());
}

struct CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
  static Variable forward(AutogradContext* ctx, const Variable& x, at::TensorList parameters, const BlockFn& fn) {
    ctx->saved_data["fn"] = to_capsule(fn);
    save_autocast_state(ctx);
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
    torch::Tensor y;
    {
      const auto autocast = restore_autocast_state(ctx);  // the recompute only, not the backward through it
      y = fn(x);
    }
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

// Saved: the inputs, then the weights. Gradient slots: every input, every weight, then fn (none).
struct FunctionalCheckpoint : public torch::autograd::Function<FunctionalCheckpoint> {
  static Variable forward(AutogradContext* ctx, at::TensorList inputs, at::TensorList weights,
                          const FunctionalBlock& fn) {
    ctx->saved_data["fn"] = to_capsule(fn);
    ctx->saved_data["inputs"] = static_cast<int64_t>(inputs.size());
    save_autocast_state(ctx);
    variable_list saved(inputs.begin(), inputs.end());
    saved.insert(saved.end(), weights.begin(), weights.end());
    ctx->save_for_backward(saved);
    return fn(inputs.vec(), weights.vec());  // autograd is off inside forward: no activations are kept
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const auto& fn = from_capsule<FunctionalBlock>(ctx->saved_data["fn"]);
    const auto num_inputs = static_cast<size_t>(ctx->saved_data["inputs"].toInt());
    torch::AutoGradMode enable_grad(true);
    // Fresh leaves: gradients are taken with respect to them, never to the parameters themselves, whose hooks
    // then see only the sum that this node returns.
    variable_list leaves, wanted;
    std::vector<size_t> wanted_slot;
    for (size_t i = 0; i < saved.size(); ++i) {
      auto leaf = saved[i].detach();
      if (ctx->needs_input_grad(i)) {
        leaf.requires_grad_(true);
        wanted.push_back(leaf);
        wanted_slot.push_back(i);
      }
      leaves.push_back(leaf);
    }
    variable_list grads(saved.size() + 1);
    if (wanted.empty()) return grads;
    const variable_list ins(leaves.begin(), leaves.begin() + static_cast<std::ptrdiff_t>(num_inputs));
    const variable_list ws(leaves.begin() + static_cast<std::ptrdiff_t>(num_inputs), leaves.end());
    torch::Tensor y;
    {
      const auto autocast = restore_autocast_state(ctx);  // the recompute only, not the backward through it
      y = fn(ins, ws);
    }
    auto got = torch::autograd::grad({y}, wanted, {grad_outputs[0]}, /*retain_graph=*/false,
                                     /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t k = 0; k < wanted.size(); ++k) grads[wanted_slot[k]] = got[k];
    return grads;
  }
};

}  // namespace

torch::Tensor checkpoint_functional(FunctionalBlock fn, const std::vector<torch::Tensor>& inputs,
                                    const std::vector<torch::Tensor>& weights) {
  return FunctionalCheckpoint::apply(at::TensorList(inputs), at::TensorList(weights), fn);
}

torch::Tensor checkpoint(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& x,
                         const std::vector<torch::Tensor>& parameters) {
  return CheckpointFunction::apply(x, at::TensorList(parameters), fn);
}

}  // namespace spvit::model

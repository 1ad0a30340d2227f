// Activation checkpointing: run `fn` without keeping its activations, and run it again in backward to get them.
// Collectives inside `fn` run again during the recompute (the LSS attention re-gathers K‖V), in the same order on
// every rank because every rank recomputes the same blocks in the same order.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <vector>

namespace spvit::model {

// Returns fn(x). `parameters` must list every trainable tensor fn uses: they become inputs of the checkpoint node
// (so its output requires grad even when x does not). In backward the block is recomputed and differentiated by a
// nested backward: each parameter's gradient reaches .grad through its own accumulator, so gradient hooks (the
// GradientAverager's) fire exactly once per parameter, on every LibTorch version.
torch::Tensor checkpoint(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& x,
                         const std::vector<torch::Tensor>& parameters);

}  // namespace spvit::model

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

// A block written as a function of its weights: fn(inputs, weights) must use `weights` (not module parameters).
using FunctionalBlock =
    std::function<torch::Tensor(const std::vector<torch::Tensor>& inputs, const std::vector<torch::Tensor>& weights)>;

// Returns fn(inputs, weights) without keeping fn's activations. Backward recomputes fn on detached copies of the
// inputs and weights and returns their gradients through this node (inputs and weights that do not require grad
// get none). For a block applied many times in one step — the decoder's chunks — the weights' gradients of all
// applications meet in the enclosing graph and reach each parameter's accumulator once, so gradient hooks (the
// GradientAverager's) fire once per step. fn must not run collectives: its ranks may recompute different chunks.
torch::Tensor checkpoint_functional(FunctionalBlock fn, const std::vector<torch::Tensor>& inputs,
                                    const std::vector<torch::Tensor>& weights);

}  // namespace spvit::model

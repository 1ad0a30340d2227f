// Gradient clipping by the global L2 norm (docs/optimisers.md).
//
// Parameters are replicated on every rank and, after double gradient averaging (dist::GradientAverager), every rank
// holds the same averaged gradient for each of them. The norm of the local gradients is therefore already the
// global norm of the model's gradient: no communication is needed, and summing squared norms over ranks would be
// wrong (it would count each replica once per rank). Call clip_grad_norm after GradientAverager::finish() (and after
// LossScaler::unscale_and_check when loss scaling is on).
#pragma once
#include <torch/torch.h>

#include <vector>

#include "spvit/dist/communicator.h"

namespace spvit::train {

// Scales the gradients of `params` (those without a gradient are ignored) so their total L2 norm is at most
// max_norm, and returns the total norm before clipping (computed in float64). Gradients are untouched when the norm
// is <= max_norm, and also when it is not finite (the caller should then skip the step; the norm returned is inf or
// nan). max_norm must be > 0 (ConfigError otherwise).
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

// The same with the clipping decision made identical on every rank of `comm` (null: as above): the squared norm
// is all-reduced with ReduceOp::Max, so any round-off difference between replicas can never make one rank clip and
// another not. With correctly averaged gradients the values already agree and the result equals the local norm.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm, const dist::CommPtr& comm);

}  // namespace spvit::train

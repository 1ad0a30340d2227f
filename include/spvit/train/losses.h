// Segmentation losses normalised over the WHOLE sample even when a rank holds only part of it
// (docs/sequence-parallel.md, "Loss normalisation"): the per-rank losses of a sequence group sum to the sample loss, so
// summing rank gradients (double gradient averaging) gives exactly the single-process gradient.
#pragma once
#include <torch/torch.h>

#include "spvit/core/config.h"
#include "spvit/dist/communicator.h"

namespace spvit::train {

struct LossOptions {
  double ce_weight = 1.0;    // cross-entropy term
  double dice_weight = 1.0;  // soft Dice term (1 - mean Dice over classes)
  double smooth = 1e-5;      // Dice smoothing, keeps empty classes finite
  // Targets < 0 (data::ClassMap::kIgnore) are ignored: they count in neither term, and the cross-entropy of each
  // sample is normalised by its annotated pixels (summed over the sequence group in the Dice all-reduce) instead of
  // all its pixels — as torch's cross_entropy(ignore_index) with mean reduction does for one sample.
  bool ignore_negative = false;

  // train.ce_weight, train.dice_weight; ignore_negative when the data can mark pixels ignored (slides with
  // data.unannotated = ignore or a class mapped to ignore).
  static LossOptions from_config(const Config& config);
};

struct LossParts {
  torch::Tensor total;  // this rank's share of the loss (differentiable)
  torch::Tensor ce;     // this rank's share of the cross-entropy term (for logging)
  torch::Tensor dice;   // the Dice loss of the batch (identical on every rank of the group; for logging)
};

// logits [B, K, spatial...] and target [B, spatial...] (int64 class ids) for this rank's pixels.
// `pixels_per_sample`: the sample's total pixel count over all ranks. `weight` (optional, [B, spatial...]) weights
// each pixel (adaptive tiles: the leaf area a tile pixel stands for; empty slots 0). `seq`: the sequence group whose
// ranks hold the rest of the sample (null = this rank holds all of it); Dice's per-class sums are all-reduced over it.
LossParts segmentation_loss(const torch::Tensor& logits, const torch::Tensor& target, double pixels_per_sample,
                            const dist::CommPtr& seq, const LossOptions& options = {},
                            const torch::Tensor& weight = {});

// CE + soft Dice of tile logits [B, L_s, K, P, P(, P)] against tile targets [B, L_s, P, P(, P)] weighted by
// `weight`, normalised by the sample's `pixels` (see segmentation_loss: the group's shares sum to the sample loss).
// The targets and weights are data::TokenSample's (data/token_sampling.h).
LossParts tile_loss(const torch::Tensor& tiles, const torch::Tensor& target, const torch::Tensor& weight, double pixels,
                    const dist::CommPtr& seq, const LossOptions& options);

}  // namespace spvit::train

#include "spvit/train/losses.h"

#include <algorithm>

#include "spvit/core/error.h"
#include "spvit/dist/collectives.h"

namespace spvit::train {

LossOptions LossOptions::from_config(const Config& c) {
  LossOptions o;
  o.ce_weight = c.train.ce_weight;
  o.dice_weight = c.train.dice_weight;
  const auto& d = c.data;
  const bool ignore_class = std::any_of(d.classes.begin(), d.classes.end(),
                                        [](const auto& entry) { return entry.second == "ignore"; });
  o.ignore_negative = d.source == "slides" && (d.unannotated == "ignore" || ignore_class);
  return o;
}

LossParts segmentation_loss(const torch::Tensor& logits, const torch::Tensor& target, double pixels_per_sample,
                            const dist::CommPtr& seq, const LossOptions& o, const torch::Tensor& weight) {
  SPVIT_CHECK(logits.dim() == target.dim() + 1, "loss: logits ", logits.sizes(), " and target ", target.sizes(),
              " differ by more than the class dimension");
  const int64_t B = logits.size(0), K = logits.size(1);
  SPVIT_CHECK(target.size(0) == B, "loss: batch sizes differ (", B, " vs ", target.size(0), ")");
  for (int64_t d = 1; d < target.dim(); ++d) {
    SPVIT_CHECK(target.size(d) == logits.size(d + 1), "loss: mask of shape ", target.sizes(),
                " does not match logits of shape ", logits.sizes());
  }
  SPVIT_CHECK(pixels_per_sample > 0, "loss: pixels_per_sample must be positive");
  const int ranks = seq ? seq->size() : 1;
  auto flat_logits = logits.reshape({B, K, -1});
  auto flat_target = target.reshape({B, 1, -1});
  auto w = weight.defined() ? weight.reshape({B, 1, -1}).to(logits.dtype()) : torch::ones_like(flat_target, logits.dtype());
  if (o.ignore_negative) {  // ignored pixels: weight 0, any valid class id for the gathers below
    w = w * flat_target.ge(0).to(w.dtype());
    flat_target = flat_target.clamp_min(0);
  }

  // Cross-entropy: Σ over this rank's pixels / the sample's pixels, averaged over the batch.
  auto log_p = torch::log_softmax(flat_logits, 1);
  auto pixel_ce = -log_p.gather(1, flat_target);  // [B, 1, N]

  // Soft Dice per sample and class from GLOBAL sums (one differentiable all-reduce of [2, B, K] per step; with
  // ignored pixels a third row carries each sample's annotated-pixel count, the cross-entropy's normaliser).
  auto probs = log_p.exp();
  auto onehot = torch::zeros_like(probs).scatter_(1, flat_target, 1.0);
  auto intersection = (probs * onehot * w).sum(2);     // [B, K]
  auto denominator = ((probs + onehot) * w).sum(2);    // [B, K]
  std::vector<torch::Tensor> rows{intersection, denominator};
  if (o.ignore_negative) rows.push_back(w.detach().sum(2).expand({B, K}));
  auto sums = dist::all_reduce_sum(torch::stack(rows), seq);
  torch::Tensor ce;
  if (o.ignore_negative) {  // per sample: its annotated pixels (a sample with none contributes 0)
    const auto annotated = sums[2].select(1, 0).detach().clamp_min(1.0);  // [B]
    ce = ((pixel_ce * w).sum({1, 2}) / annotated).sum() / B;
  } else {
    ce = (pixel_ce * w).sum() / (pixels_per_sample * B);
  }
  auto dice_score = (2.0 * sums[0] + o.smooth) / (sums[1] + o.smooth);
  auto dice = 1.0 - dice_score.mean();

  LossParts parts;
  parts.ce = ce;
  parts.dice = dice.detach();
  // Every rank sees the same Dice; each adds 1/ranks of it so the group's shares sum to the sample loss.
  parts.total = o.ce_weight * ce + o.dice_weight * dice / ranks;
  return parts;
}

LossParts tile_loss(const torch::Tensor& tiles, const torch::Tensor& target, const torch::Tensor& weight, double pixels,
                    const dist::CommPtr& seq, const LossOptions& options) {
  SPVIT_CHECK(tiles.dim() >= 5 && tiles.dim() == target.dim() + 1, "tile loss: tiles [B, L_s, K, P, ...] and target "
              "[B, L_s, P, ...] expected, got ", tiles.sizes(), " and ", target.sizes());
  // [B, L_s, K, tile...] -> [B, K, L_s, tile...]: the class dimension where segmentation_loss expects it.
  return segmentation_loss(tiles.transpose(1, 2), target, pixels, seq, options, weight);
}

}  // namespace spvit::train

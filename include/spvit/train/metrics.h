// Segmentation metrics over whole samples: counts are summed over every rank that holds part of the data.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "spvit/dist/communicator.h"

namespace spvit::train {

struct SegmentationCounts {
  torch::Tensor tp, fp, fn;  // [K] float64 (pixel-weighted counts)
  double correct = 0, total = 0;

  void add(const SegmentationCounts& other);
  // Sums the counts over `comm`'s ranks (call with the world communicator after evaluation).
  void all_reduce(dist::Communicator& comm);
  std::vector<double> dice() const;  // per class: 2tp / (2tp + fp + fn); classes absent everywhere count as 1
  std::vector<double> iou() const;   // per class: tp / (tp + fp + fn)
  double mean_dice(bool skip_background = true) const;
  double pixel_accuracy() const { return total > 0 ? correct / total : 0.0; }
};

// Counts of one prediction: logits [B, K, spatial...] (argmax taken) or labels, against target [B, spatial...].
// `weight` (optional) weights pixels; empty-slot pixels carry weight 0.
SegmentationCounts count_segmentation(const torch::Tensor& logits, const torch::Tensor& target, int64_t classes,
                                      const torch::Tensor& weight = {});

}  // namespace spvit::train

// Evaluation over a dataset (every data group takes its share of the samples; every sequence rank its band) and
// the prediction overlays `spvit eval` writes.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/data/dataset.h"
#include "spvit/dist/process_grid.h"
#include "spvit/model/segmenter.h"
#include "spvit/train/metrics.h"

namespace spvit::train {

struct EvalOptions {
  int64_t max_samples = -1;      // -1: all
  std::string overlay_dir;       // when set, world rank 0 writes <id>_overlay.png for the first `overlays` samples
  int64_t overlays = 2;
  // When set and the dataset groups its samples (data::Dataset::sample_group: the slides of a slide dataset), the
  // counts of each group, summed over all ranks (identical on every rank).
  std::map<std::string, SegmentationCounts>* per_group = nullptr;
};

// Sums of the confusion counts over all evaluated samples and all ranks (identical on every rank).
SegmentationCounts evaluate(model::Segmenter& model, const data::Dataset& dataset, const Config& config,
                            const dist::ProcessGrid& grid, const EvalOptions& options = {});

// The configuration stored in a training checkpoint with `overrides` (--set key=value) applied, ready to rebuild
// the model: a checkpoint trained in bf16/fp16 is evaluated in fp32 when no GPU is visible.
Config config_for_evaluation(const std::string& checkpoint, const std::vector<std::string>& overrides = {});

// The metrics as JSON text (per-class Dice and IoU, mean foreground Dice, pixel accuracy), and the same for each
// group under "per_group" (per slide) when `groups` has any.
std::string metrics_json(const SegmentationCounts& counts, int64_t samples,
                         const std::map<std::string, SegmentationCounts>& groups = {});

}  // namespace spvit::train

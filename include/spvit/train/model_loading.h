// The one place a Segmenter is built: fresh from a configuration (training), or from a checkpoint (eval, infer).
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/model/segmenter.h"

namespace spvit::train {

// A fresh model for `config` predicting `classes` classes, initialised from config.seed (so every rank builds the
// same replica), on the CPU in float32; the caller moves it to its device and precision.
model::Segmenter make_segmenter(const Config& config, int64_t classes);

struct LoadedSegmenter {
  Config config;                   // the checkpoint's configuration plus the overrides (config_for_evaluation)
  model::Segmenter model{nullptr};
  int64_t classes = 0;             // read from the stored decoder head
  torch::Device device{torch::kCPU};
};

// checkpoint -> model: its configuration (bf16/fp16 become fp32 where there is no GPU) with `overrides`, the number
// of classes from the stored head, the weights (older parameter names included), in config.dtype on the device
// config.device selects for `local_rank`, in eval mode. DataError for a missing or unreadable checkpoint or weights
// that do not fit its configuration.
LoadedSegmenter load_segmenter(const std::string& checkpoint, const std::vector<std::string>& overrides = {},
                               int local_rank = 0);
// The same with the configuration already read (config_for_evaluation(checkpoint, ...)).
LoadedSegmenter load_segmenter(const std::string& checkpoint, const Config& config, int local_rank);

}  // namespace spvit::train

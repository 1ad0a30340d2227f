// `spvit train`: the training loop for uniform-grid segmentation (encoder + UNETR decoder), sequence-parallel over
// each data group's ranks and data-parallel across groups.
#pragma once
#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/core/error.h"
#include "spvit/dist/process_grid.h"

namespace spvit::train {

struct TrainOptions {
  bool resume = false;       // continue from <out_dir>/checkpoint.pt (or resume_path); an error if it is missing
  std::string resume_path;
  bool resume_if_exists = false;  // continue from <out_dir>/checkpoint.pt when it exists, else start fresh (a
                                  // requeued job script runs the same command every time)
  // Configuration keys (or whole sections: "grid") whose values may differ from the checkpoint's (see
  // resume_check.h); others that break continuation refuse the resume.
  std::vector<std::string> allow_changes;
  int64_t stop_after = 0;    // leave (with a checkpoint) after this many steps of this run; 0 = run to train.steps
};

struct TrainSummary {
  int64_t steps = 0;          // optimiser steps completed (including resumed ones)
  double last_loss = 0;       // mean loss of the last step over the data groups
  double val_dice = -1;       // mean foreground Dice of the last evaluation (-1: none)
  std::string checkpoint;     // path of the final checkpoint
  std::string metrics;        // path of the JSONL metrics
};

// Thrown identically on every rank when training cannot go on (e.g. too many non-finite steps); the last good
// checkpoint is kept.
class TrainingStopped : public Error {
  using Error::Error;
};

// Thrown identically on every rank after a stop signal (SIGTERM, SIGINT, SIGUSR1 on any rank): the step in flight
// was finished and a checkpoint written; `--resume` continues bit-exactly. Exit code exit_code::kPreempted.
class TrainingPreempted : public Error {
  using Error::Error;
};

TrainSummary run_training(const Config& config, const dist::ProcessGrid& grid, const TrainOptions& options);

}  // namespace spvit::train

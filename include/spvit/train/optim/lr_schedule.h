// Learning-rate schedules: linear warmup from 0, then a decay to min_lr (docs/optimisers.md).
#pragma once
#include <cstdint>
#include <string>

#include "spvit/core/config.h"

namespace spvit::train {

struct ScheduleOptions {
  std::string kind = "cosine";  // cosine | linear | polynomial | constant
  double base_lr = 1e-3, min_lr = 0.0;
  int64_t warmup_steps = 0, total_steps = 1000;
  double power = 1.0;  // polynomial only

  // train.schedule, lr, min_lr, warmup_steps, steps (the total), power.
  static ScheduleOptions from_config(const TrainConfig& train);
};

// lr_at(step), where step = optimiser steps already taken (0 for the first update):
//   step < warmup_steps:  base_lr · step / warmup_steps          (0 at step 0, base_lr at step == warmup_steps)
//   then, with t = (step − warmup_steps) / (total_steps − warmup_steps) clamped to [0, 1]:
//     cosine      min_lr + (base_lr − min_lr) · (1 + cos(π t)) / 2
//     linear      min_lr + (base_lr − min_lr) · (1 − t)
//     polynomial  min_lr + (base_lr − min_lr) · (1 − t)^power
//     constant    base_lr
//   step >= total_steps: min_lr (base_lr for constant). Both endpoints are returned exactly.
// The constructor validates the options and throws ConfigError naming the bad option and its value. A warmup
// longer than the run is not an error: warmup_steps > total_steps is clamped to total_steps with a warning (the
// place where train.warmup_steps meets train.steps; options() returns the clamped value).
class LrSchedule {
 public:
  explicit LrSchedule(ScheduleOptions options);
  double lr_at(int64_t step) const;  // step >= 0
  const ScheduleOptions& options() const { return options_; }

 private:
  enum class Kind { Cosine, Linear, Polynomial, Constant };
  ScheduleOptions options_;
  Kind kind_;
};

}  // namespace spvit::train

// Warmup + decay learning-rate schedules (include/spvit/train/optim/lr_schedule.h).
#include <cmath>

#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/train/optim/lr_schedule.h"

namespace spvit::train {

ScheduleOptions ScheduleOptions::from_config(const TrainConfig& train) {
  ScheduleOptions s;
  s.kind = train.schedule;
  s.base_lr = train.lr;
  s.min_lr = train.min_lr;
  s.warmup_steps = train.warmup_steps;
  s.total_steps = train.steps;
  s.power = train.power;
  return s;
}

LrSchedule::LrSchedule(ScheduleOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  if (o.kind == "cosine") {
    kind_ = Kind::Cosine;
  } else if (o.kind == "linear") {
    kind_ = Kind::Linear;
  } else if (o.kind == "polynomial") {
    kind_ = Kind::Polynomial;
  } else if (o.kind == "constant") {
    kind_ = Kind::Constant;
  } else {
    SPVIT_THROW(ConfigError, "schedule kind '", o.kind, "' is unknown; expected one of: cosine, linear, polynomial, "
                "constant");
  }
  if (!std::isfinite(o.base_lr) || o.base_lr < 0) {
    SPVIT_THROW(ConfigError, "schedule base_lr must be a finite number >= 0, got ", o.base_lr);
  }
  if (!std::isfinite(o.min_lr) || o.min_lr < 0 || o.min_lr > o.base_lr) {
    SPVIT_THROW(ConfigError, "schedule min_lr must be in [0, base_lr = ", o.base_lr, "], got ", o.min_lr);
  }
  if (o.total_steps < 1) SPVIT_THROW(ConfigError, "schedule total_steps must be >= 1, got ", o.total_steps);
  if (o.warmup_steps < 0) SPVIT_THROW(ConfigError, "schedule warmup_steps must be >= 0, got ", o.warmup_steps);
  if (o.warmup_steps > o.total_steps) {
    // A warmup longer than the run (e.g. a short smoke test of a long configuration) is shortened to the run, as
    // PyTorch's and Hugging Face's schedulers would just run it: the lr then rises to base_lr at the last step.
    // The configuration is the same on every rank, so rank 0 says it once.
    if (log::rank() == 0) {
      log::warn("train.warmup_steps = {} is longer than the run (train.steps = {}): warming up over {} steps instead",
                o.warmup_steps, o.total_steps, o.total_steps);
    }
    options_.warmup_steps = o.total_steps;
  }
  if (!std::isfinite(o.power) || o.power <= 0) {
    SPVIT_THROW(ConfigError, "schedule power must be a finite number > 0, got ", o.power);
  }
}

double LrSchedule::lr_at(int64_t step) const {
  const auto& o = options_;
  SPVIT_CHECK(step >= 0, "lr_at: step must be >= 0, got ", step);
  if (step < o.warmup_steps) {
    return o.base_lr * static_cast<double>(step) / static_cast<double>(o.warmup_steps);
  }
  if (kind_ == Kind::Constant) return o.base_lr;
  if (step >= o.total_steps) return o.min_lr;
  if (step == o.warmup_steps) return o.base_lr;
  const double t = static_cast<double>(step - o.warmup_steps) / static_cast<double>(o.total_steps - o.warmup_steps);
  double fraction = 1.0;  // of (base_lr - min_lr) still left
  switch (kind_) {
    case Kind::Cosine: fraction = 0.5 * (1.0 + std::cos(M_PI * t)); break;
    case Kind::Linear: fraction = 1.0 - t; break;
    case Kind::Polynomial: fraction = std::pow(1.0 - t, o.power); break;
    case Kind::Constant: break;
  }
  return o.min_lr + (o.base_lr - o.min_lr) * fraction;
}

}  // namespace spvit::train

// One training step — forward, loss, backward, gradient averaging, finiteness, clipping, loss scaling, optimiser —
// as `spvit train` runs it (docs/training.md, "The training step"). Benchmarks that measure a step should use it
// too, so that what they time is what users run.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>

#include "spvit/core/config.h"
#include "spvit/data/loader.h"
#include "spvit/dist/gradient_averager.h"
#include "spvit/dist/process_grid.h"
#include "spvit/model/segmenter.h"
#include "spvit/train/optim/loss_scaler.h"
#include "spvit/train/optim/optim.h"
#include "spvit/train/precision.h"

namespace spvit::train {

struct StepResult {
  bool finite = true;
  bool overflow = false;  // fp16: finite loss, non-finite gradients (the loss scale was too high)
  double loss = 0, dice = 0, grad_norm = 0, tokens = 0;
  // Agreed by every rank in the step's all-reduce:
  int stop_signal = 0;          // a stop signal reached some rank (its number; the largest if several)
  bool checkpoint_due = false;  // some rank (the trainer: rank 0's clock) said a checkpoint is due
  bool write_failed = false;    // some rank (the trainer: rank 0) could not write its metrics
};

// Rank-local news the step's one all-reduce carries to every rank (no extra collective, no extra host sync).
struct StepNews {
  bool checkpoint_due = false;
  bool write_failed = false;
};

// The parts of a step, in the order they run, for a benchmark's time split (TrainStep::set_phase_mark). Forward and
// loss alternate once per sample for the tile decoder.
enum class StepPhase { Batch, Forward, Loss, Backward, GradAverage, Check, Clip, Optimizer, Metrics };
constexpr int kStepPhases = 9;
// Called when a phase has just ended; the time since the previous call belongs to it.
using PhaseMark = std::function<void(StepPhase)>;

class TrainStep {
 public:
  // Everything is borrowed and must outlive the step; the model lives on precision.device.
  TrainStep(const Config& config, const dist::ProcessGrid& grid, model::Segmenter model, const RunPrecision& precision,
            Optimizer& optimizer, const LrSchedule& schedule, dist::GradientAverager& averager, LossScaler& scaler);

  // Runs step number `step` (0-based) on this rank's batch. Any non-finite loss or gradient on any rank skips the
  // update everywhere (finite = false); a write failure reported by any rank returns before the update.
  StepResult run(const data::Batch& batch, int64_t step, const StepNews& news = {});

  // Benchmarks only: `mark` is called at the end of each phase (see StepPhase). Unset (the trainer), nothing is called.
  void set_phase_mark(PhaseMark mark) { mark_ = std::move(mark); }

 private:
  // This rank's share of the batch loss (differentiable), the batch's Dice loss and the tokens processed.
  struct BatchLoss {
    torch::Tensor total;
    double dice = 0;
    double tokens = 0;
  };
  BatchLoss band_loss(const data::Batch& batch);
  BatchLoss tile_loss_of(const data::Batch& batch);
  void mark(StepPhase phase) const {
    if (mark_) mark_(phase);
  }

  const Config& config_;
  const dist::ProcessGrid& grid_;
  model::Segmenter model_;
  RunPrecision precision_;
  Optimizer& optimizer_;
  const LrSchedule& schedule_;
  dist::GradientAverager& averager_;
  LossScaler& scaler_;
  PhaseMark mark_;
};

// The model and everything a step updates, built from the configuration as `spvit train` builds them (the trainer
// and `spvit bench step` use this one builder, so a benchmark times what users run). The model is seeded
// (make_segmenter) and moved to the configured device and dtype; `grid` and `config` must outlive it.
struct TrainingParts {
  RunPrecision precision;
  model::Segmenter model{nullptr};
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<LrSchedule> schedule;
  std::unique_ptr<dist::GradientAverager> averager;
  std::unique_ptr<LossScaler> scaler;
  std::unique_ptr<TrainStep> step;
};
std::unique_ptr<TrainingParts> make_training_parts(const Config& config, const dist::ProcessGrid& grid,
                                                   int64_t classes);

}  // namespace spvit::train

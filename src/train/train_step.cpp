#include "spvit/train/train_step.h"

#include <cmath>

#include "spvit/core/device.h"
#include "spvit/core/stop_signal.h"
#include "spvit/train/data_setup.h"
#include "spvit/train/forward.h"
#include "spvit/train/losses.h"
#include "spvit/train/model_loading.h"

namespace spvit::train {
namespace {

// Sum of `value` over the world, divided by `divisor` (identical on every rank).
double world_mean(const dist::ProcessGrid& grid, double value, double divisor) {
  auto t = torch::full({1}, value, torch::kFloat64);
  grid.world()->all_reduce(t, dist::ReduceOp::Sum)->wait();
  return t.item<double>() / divisor;
}

// One device-to-host read for all gradients (a read per parameter would synchronise a GPU hundreds of times).
bool gradients_finite(const std::vector<torch::Tensor>& params) {
  torch::Tensor all_finite;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    auto finite = torch::isfinite(p.grad()).all();
    all_finite = all_finite.defined() ? all_finite.logical_and(finite) : finite;
  }
  return !all_finite.defined() || all_finite.item<bool>();
}

}  // namespace

TrainStep::TrainStep(const Config& config, const dist::ProcessGrid& grid, model::Segmenter model,
                     const RunPrecision& precision, Optimizer& optimizer, const LrSchedule& schedule,
                     dist::GradientAverager& averager, LossScaler& scaler)
    : config_(config), grid_(grid), model_(std::move(model)), precision_(precision), optimizer_(optimizer),
      schedule_(schedule), averager_(averager), scaler_(scaler) {}

// Uniform grid + unetr decoder: one forward over the batch's bands.
TrainStep::BatchLoss TrainStep::band_loss(const data::Batch& batch) {
  const bool cuda = precision_.device.is_cuda();
  auto [images, masks] = stack_batch(batch.samples, /*pinned=*/cuda);
  masks = masks.to(precision_.device, masks.scalar_type(), /*non_blocking=*/cuda);
  const auto& shape = batch.samples[0].full_shape;
  const auto bands = bands_for(shape, config_, grid_);
  double pixels = 1;
  for (auto side : shape) pixels *= static_cast<double>(side);
  mark(StepPhase::Batch);
  const auto logits = forward_band(model_, images, bands, grid_.seq(), precision_, /*non_blocking=*/cuda);
  mark(StepPhase::Forward);
  // The loss (softmax, global Dice sums) in the parameters' precision, outside autocast.
  auto parts = segmentation_loss(logits, masks, pixels, grid_.seq(), LossOptions::from_config(config_));
  const double dice = parts.dice.item<double>();
  mark(StepPhase::Loss);
  return {parts.total, dice, static_cast<double>(bands.num_tokens() * images.size(0))};
}

// Layout tokens + tile decoder: each sample has its own layout (and empty-slot mask), so the samples go through
// the model one after the other and their losses are summed for one backward (each parameter's gradient hook
// still fires once, with the sum).
TrainStep::BatchLoss TrainStep::tile_loss_of(const data::Batch& batch) {
  BatchLoss out;
  const double B = static_cast<double>(batch.samples.size());
  mark(StepPhase::Batch);
  for (const auto& sample : batch.samples) {
    const auto& ts = data::token_sample(sample);
    const auto& dev = precision_.device;
    const auto tiles = forward_tokens(model_, ts, grid_.seq(), grid_.seq_size(), grid_.seq_index(), precision_);
    mark(StepPhase::Forward);
    auto parts = tile_loss(tiles, ts.target.to(dev).unsqueeze(0), ts.weight.to(dev).unsqueeze(0), ts.pixels,
                           grid_.seq(), LossOptions::from_config(config_));
    out.total = out.total.defined() ? out.total + parts.total / B : parts.total / B;
    out.dice += parts.dice.item<double>() / B;
    out.tokens += static_cast<double>(ts.layout->length());
    mark(StepPhase::Loss);
  }
  return out;
}

StepResult TrainStep::run(const data::Batch& batch, int64_t step, const StepNews& news) {
  optimizer_.zero_grad();
  const auto loss = model_->decoder_entry().uniform_bands ? band_loss(batch) : tile_loss_of(batch);
  scaler_.scale(loss.total).backward();  // fp16: loss · scale, so small gradients survive in half precision
  mark(StepPhase::Backward);
  averager_.finish();
  mark(StepPhase::GradAverage);

  StepResult r;
  const double local_loss = loss.total.item<double>();
  // fp16: the scaler divides the gradients back to their true size and checks them on the way (this rank only:
  // it has no communicator); otherwise one finiteness check.
  const auto& params = model_->parameters();
  const bool local_grads_finite = scaler_.enabled() ? scaler_.unscale_and_check(params) : gradients_finite(params);
  // Every rank must take the same decision: any non-finite value anywhere skips the step everywhere. The step's
  // other rank-local news travels in the same all-reduce (no extra collective, no extra host sync):
  // [loss non-finite, gradients non-finite, stop signal received, checkpoint due (rank 0's clock), metrics write
  // failed (rank 0)].
  auto flags = torch::tensor({std::isfinite(local_loss) ? 0.0 : 1.0, local_grads_finite ? 0.0 : 1.0,
                              static_cast<double>(stop_signal_received()), news.checkpoint_due ? 1.0 : 0.0,
                              news.write_failed ? 1.0 : 0.0},
                             torch::kFloat64);
  grid_.world()->all_reduce(flags, dist::ReduceOp::Max)->wait();
  const auto agreed = flags.accessor<double, 1>();
  const bool loss_bad = agreed[0] > 0, grads_bad = agreed[1] > 0;
  r.stop_signal = static_cast<int>(agreed[2]);
  r.checkpoint_due = agreed[3] > 0;
  r.write_failed = agreed[4] > 0;
  mark(StepPhase::Check);
  if (r.write_failed) return r;
  scaler_.update(!grads_bad);  // no-op unless fp16
  if (loss_bad || grads_bad) {
    optimizer_.zero_grad();
    r.finite = false;
    r.overflow = !loss_bad && scaler_.enabled();
    return r;
  }
  r.grad_norm = config_.train.clip_grad_norm > 0 ? clip_grad_norm(model_->parameters(), config_.train.clip_grad_norm)
                                                 : 0.0;
  mark(StepPhase::Clip);
  optimizer_.set_lr(schedule_.lr_at(step + 1));  // warmup starts above 0: the first update counts
  optimizer_.step();
  mark(StepPhase::Optimizer);
  r.loss = world_mean(grid_, local_loss, grid_.data_size());
  r.dice = 1.0 - world_mean(grid_, loss.dice, grid_.world_size());
  r.tokens = loss.tokens * static_cast<double>(grid_.data_size());
  mark(StepPhase::Metrics);
  return r;
}

std::unique_ptr<TrainingParts> make_training_parts(const Config& config, const dist::ProcessGrid& grid,
                                                   int64_t classes) {
  auto t = std::make_unique<TrainingParts>();
  t->model = make_segmenter(config, classes);
  t->precision = RunPrecision::from_config(config, select_device(config.device, grid.local_rank()));
  t->model->to(t->precision.device, t->precision.param_dtype);
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& p : t->model->named_parameters()) named.emplace_back(p.key(), p.value());
  const auto& c = config.train;
  t->optimizer = make_optimizer(c.optimizer, decay_groups(named, c.weight_decay), c.lr, c.beta1, c.beta2, c.eps);
  t->schedule = std::make_unique<LrSchedule>(ScheduleOptions::from_config(c));
  t->averager = std::make_unique<dist::GradientAverager>(t->model->parameters(), grid.world(), grid.seq(), grid.data(),
                                                         dist::GradientAverager::Options::from_config(config.dist));
  LossScaler::Options scaling;
  scaling.enabled = t->precision.loss_scaling;
  // No communicator: the step all-reduces the finite flags itself and hands the agreed one to update().
  t->scaler = std::make_unique<LossScaler>(scaling, nullptr);
  t->step = std::make_unique<TrainStep>(config, grid, t->model, t->precision, *t->optimizer, *t->schedule,
                                        *t->averager, *t->scaler);
  return t;
}

}  // namespace spvit::train

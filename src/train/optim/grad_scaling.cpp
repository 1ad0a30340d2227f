// Gradient clipping and fp16 dynamic loss scaling (grad_clip.h, loss_scaler.h): both act on gradient magnitudes.
#include <cmath>

#include "spvit/core/error.h"
#include "spvit/train/optim/grad_clip.h"
#include "spvit/train/optim/loss_scaler.h"

namespace spvit::train {
namespace {

// Sum of squared gradient entries over `params`, in float64, as a 1-element tensor on the gradients' device
// (zero on the CPU when no parameter has a gradient).
torch::Tensor squared_grad_norm(const std::vector<torch::Tensor>& params) {
  torch::Tensor total;
  for (const auto& p : params) {
    const auto& g = p.grad();
    if (!g.defined()) continue;
    auto norm = at::linalg_vector_norm(g.detach(), 2, c10::nullopt, false, torch::kFloat64);
    auto squared = norm * norm;
    total = total.defined() ? total + squared.to(total.device()) : squared;
  }
  if (!total.defined()) total = torch::zeros({}, torch::dtype(torch::kFloat64));
  return total.reshape({1});
}

void scale_grads(const std::vector<torch::Tensor>& params, double factor) {
  torch::NoGradGuard no_grad;
  for (const auto& p : params) {
    const auto& g = p.grad();
    if (g.defined()) g.detach().mul_(factor);
  }
}

}  // namespace

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  return clip_grad_norm(params, max_norm, nullptr);
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm, const dist::CommPtr& comm) {
  if (!(max_norm > 0) || !std::isfinite(max_norm)) {
    SPVIT_THROW(ConfigError, "gradient clipping max_norm must be a finite number > 0, got ", max_norm);
  }
  auto squared = squared_grad_norm(params);
  if (comm) comm->all_reduce(squared, dist::ReduceOp::Max)->wait();
  const double norm = std::sqrt(squared.item<double>());
  // Leave non-finite gradients alone: scaling cannot repair them and the caller skips the step.
  if (std::isfinite(norm) && norm > max_norm) scale_grads(params, max_norm / norm);
  return norm;
}

LossScaler::LossScaler(Options options, dist::CommPtr comm)
    : options_(options), comm_(std::move(comm)), scale_(options.init_scale) {
  const auto& o = options_;
  if (!std::isfinite(o.init_scale) || o.init_scale <= 0) {
    SPVIT_THROW(ConfigError, "loss scaler init_scale must be a finite number > 0, got ", o.init_scale);
  }
  if (!std::isfinite(o.growth_factor) || o.growth_factor <= 1) {
    SPVIT_THROW(ConfigError, "loss scaler growth_factor must be a finite number > 1, got ", o.growth_factor);
  }
  if (!(o.backoff_factor > 0 && o.backoff_factor < 1)) {
    SPVIT_THROW(ConfigError, "loss scaler backoff_factor must be in (0, 1), got ", o.backoff_factor);
  }
  if (o.growth_interval < 1) {
    SPVIT_THROW(ConfigError, "loss scaler growth_interval must be >= 1, got ", o.growth_interval);
  }
}

torch::Tensor LossScaler::scale(const torch::Tensor& loss) const {
  if (!options_.enabled) return loss;
  return loss * scale_;
}

bool LossScaler::unscale_and_check(const std::vector<torch::Tensor>& params) {
  if (!options_.enabled) return true;
  torch::NoGradGuard no_grad;
  const double inverse = 1.0 / scale_;
  // found_inf stays on the gradients' device until the one host read below.
  torch::Tensor found_inf;
  for (const auto& p : params) {
    const auto& g = p.grad();
    if (!g.defined()) continue;
    auto grad = g.detach();
    grad.mul_(inverse);
    auto bad = torch::isfinite(grad).all().logical_not().to(torch::kFloat32);
    found_inf = found_inf.defined() ? torch::maximum(found_inf, bad.to(found_inf.device())) : bad;
  }
  if (!found_inf.defined()) found_inf = torch::zeros({}, torch::dtype(torch::kFloat32));
  found_inf = found_inf.reshape({1}).contiguous();
  if (comm_) comm_->all_reduce(found_inf, dist::ReduceOp::Max)->wait();
  return found_inf.item<float>() == 0.0f;
}

void LossScaler::update(bool found_finite) {
  if (!options_.enabled) return;
  if (!found_finite) {
    scale_ *= options_.backoff_factor;
    good_steps_ = 0;
    return;
  }
  if (++good_steps_ >= options_.growth_interval) {
    scale_ *= options_.growth_factor;
    good_steps_ = 0;
  }
}

void LossScaler::save(torch::serialize::OutputArchive& archive) const {
  archive.write("scale", torch::tensor(scale_, torch::dtype(torch::kFloat64)));
  archive.write("good_steps", torch::tensor(good_steps_, torch::dtype(torch::kInt64)));
}

void LossScaler::load(torch::serialize::InputArchive& archive) {
  torch::Tensor scale, good_steps;
  archive.read("scale", scale);
  archive.read("good_steps", good_steps);
  const double value = scale.item<double>();
  SPVIT_CHECK(std::isfinite(value) && value > 0, "loss scaler state holds an invalid scale ", value);
  scale_ = value;
  good_steps_ = good_steps.item<int64_t>();
}

}  // namespace spvit::train

// Dynamic loss scaling for fp16 training (docs/optimisers.md), the scheme of torch.cuda.amp.GradScaler:
//
//   loss = scaler.scale(loss); loss.backward(); averager.finish();
//   bool finite = scaler.unscale_and_check(params);   // collective over the scaler's communicator
//   if (finite) { clip_grad_norm(...); optimizer.step(); }
//   scaler.update(finite);
//
// The finite/non-finite decision is all-reduced (max of the per-rank "found inf" flag) over the communicator given
// at construction, so every rank skips or steps together and the scales stay identical. With a null communicator
// the scaler is single-process. Disabled (enabled = false, e.g. bf16 or fp32): scale() returns the loss unchanged,
// unscale_and_check() returns true without touching the gradients or communicating, and the scale stays 1.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "spvit/dist/communicator.h"

namespace spvit::train {

class LossScaler {
 public:
  struct Options {
    double init_scale = 65536, growth_factor = 2, backoff_factor = 0.5;
    int64_t growth_interval = 2000;
    bool enabled = true;
  };
  // Validates the options (ConfigError naming the bad one): init_scale > 0, growth_factor > 1,
  // 0 < backoff_factor < 1, growth_interval >= 1.
  LossScaler(Options options, dist::CommPtr comm);

  torch::Tensor scale(const torch::Tensor& loss) const;  // loss · scale
  // Divides every gradient of `params` by the scale (in place) and reports whether all of them are finite on every
  // rank of the communicator. Every rank must call it (it is a collective when a communicator was given).
  bool unscale_and_check(const std::vector<torch::Tensor>& params);
  // After a non-finite step: scale · backoff_factor and the run of good steps restarts. After a finite one: counts
  // it, and after growth_interval consecutive finite steps multiplies the scale by growth_factor.
  void update(bool found_finite);
  double scale_value() const { return options_.enabled ? scale_ : 1.0; }
  int64_t good_steps() const { return good_steps_; }  // consecutive finite steps since the last change of scale
  bool enabled() const { return options_.enabled; }

  void save(torch::serialize::OutputArchive& archive) const;  // scale and good-step count
  void load(torch::serialize::InputArchive& archive);

 private:
  Options options_;
  dist::CommPtr comm_;
  double scale_;
  int64_t good_steps_ = 0;
};

}  // namespace spvit::train

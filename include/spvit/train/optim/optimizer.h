// Optimisers for training (docs/optimisers.md): AdamW and LAMB over parameter groups with per-group weight decay.
//
// Both keep, per parameter tensor, a step count and Adam's two moment tensors. State lives on the parameter's device
// in its dtype, except for fp16/bf16 parameters, whose state and update arithmetic are float32 (the result is
// rounded back into the parameter). Every rank must call step() with identical gradients (after gradient
// averaging) so that replicated parameters stay identical; the optimisers themselves never communicate.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace spvit::train {

struct ParamGroup {
  std::vector<torch::Tensor> params;
  double weight_decay = 0.0;
};

// Splits named parameters into {decayed, not decayed} (always these two groups, in this order, possibly empty).
// Not decayed: any parameter with at most one dimension (biases, norm scales/shifts), any name containing "norm" or
// "bias", positional tables (a parameter directly inside a module named "pos", e.g. "encoder.pos.table", or a
// parameter named "pos*" such as "pos_embed") and learned tokens ("*_token", e.g. "cls_token"). A coordinate MLP
// under "pos" ("pos.fc1.weight") is an ordinary layer and is decayed. Parameters with requires_grad == false are
// left out (frozen). Throws ConfigError if weight_decay is negative or not finite.
std::vector<ParamGroup> decay_groups(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                                     double weight_decay);
// The rule above for one parameter (exposed for tests and for logging the split).
bool is_no_decay_parameter(const std::string& name, const torch::Tensor& param);

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of every parameter that has a gradient (p.grad() defined); parameters without one are skipped and
  // their step count does not advance. Runs under NoGradGuard.
  virtual void step() = 0;
  // Zeroes gradients in place (keeps the tensors: gradient buckets and hooks may hold them).
  void zero_grad();
  // The learning rate of every group. Throws ConfigError for a negative or non-finite value.
  void set_lr(double lr);
  double lr() const { return lr_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  virtual std::string name() const = 0;  // "adamw" | "lamb"

  // Writes the learning rate and every parameter's state (step count, moments). The archive references the state
  // tensors (no copies): serialise it (save_to) before the next step(). Use a dedicated (sub)archive.
  virtual void save(torch::serialize::OutputArchive& archive) const = 0;
  // Restores what save() wrote into an optimiser built over the same parameters (same count, shapes and order);
  // throws spvit::Error naming the mismatch otherwise. Continuing after load() is bit-exact.
  virtual void load(torch::serialize::InputArchive& archive) = 0;

 protected:
  Optimizer(std::vector<ParamGroup> groups, double lr);
  std::vector<ParamGroup> groups_;
  double lr_;
};

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};
struct LambOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-6;
  bool bias_correction = true;
  // Upper clip of φ(‖w‖) in the trust ratio φ(‖w‖)/‖r‖ (the LAMB paper's γ_u; φ(z) = min(z, max_trust_ratio)).
  // Must be > 0; infinity disables the clip.
  double max_trust_ratio = 10.0;
};

// AdamW (Loshchilov & Hutter): decoupled decay w ← w·(1 − lr·λ), then the bias-corrected Adam step. Same operation
// order as torch::optim::AdamW (amsgrad off).
std::unique_ptr<Optimizer> make_adamw(std::vector<ParamGroup> groups, AdamWOptions options);
// LAMB (You et al. 2019, Algorithm 2), per parameter tensor:
//   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ) (or m, v without bias correction)
//   r = m̂/(√v̂ + ε) + λ·w;  ratio = φ(‖w‖)/‖r‖ if ‖w‖ > 0 and ‖r‖ > 0, else 1;  w ← w − lr·ratio·r.
// The trust ratio is applied to every tensor, including the no-decay group (as NVIDIA apex FusedLAMB does); for
// those λ = 0 so r is the plain Adam direction. A zero-initialised tensor gets ratio 1 (a plain Adam step).
std::unique_ptr<Optimizer> make_lamb(std::vector<ParamGroup> groups, LambOptions options);
// By name ("adamw" | "lamb"); other LAMB options keep their defaults. Throws ConfigError for an unknown name.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<ParamGroup> groups, double lr,
                                          double beta1, double beta2, double eps);

}  // namespace spvit::train

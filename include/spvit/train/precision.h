// Where and in which precision a training or evaluation run computes (config keys `device`, `dtype`,
// `train.precision`). Parameters and optimiser state stay in `dtype` (float32 or float64); bf16/fp16 only change
// the forward pass, through CUDA autocast, and fp16 adds dynamic loss scaling (LossScaler) in the trainer.
#pragma once
#include <torch/torch.h>

#include <string>

#include "spvit/core/config.h"

namespace spvit::train {

struct RunPrecision {
  torch::Device device = torch::kCPU;
  torch::ScalarType param_dtype = torch::kFloat32;  // parameters, gradients, optimiser state, loss
  bool autocast = false;                            // forward under CUDA autocast
  torch::ScalarType autocast_dtype = torch::kBFloat16;
  bool loss_scaling = false;                        // fp16: dynamic loss scaling

  // Checks the combination on `device` (ConfigError naming the keys): bf16/fp16 need a CUDA device, a LibTorch
  // with autocast (>= 2.4) and dtype float32.
  static RunPrecision from_config(const Config& config, const torch::Device& device);
  std::string describe() const;  // e.g. "cuda:0, float32 parameters, bf16 autocast"
  // The precision the forward pass actually computes in: "bf16" or "fp16" under autocast, else "fp32" (float32 or
  // float64 parameters alike). What reports should print, rather than the mode that was asked for.
  std::string mode() const;
};

// Sets CUDA autocast for the forward pass while alive (nothing on CPU or without autocast).
class ForwardPrecisionGuard {
 public:
  explicit ForwardPrecisionGuard(const RunPrecision& precision);
  ~ForwardPrecisionGuard();
  ForwardPrecisionGuard(const ForwardPrecisionGuard&) = delete;
  ForwardPrecisionGuard& operator=(const ForwardPrecisionGuard&) = delete;

 private:
  struct State;
  State* state_ = nullptr;
};

}  // namespace spvit::train

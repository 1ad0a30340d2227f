#include "spvit/train/precision.h"

#include "spvit/core/dtype.h"
#include "spvit/core/error.h"
#include "spvit/core/torch_compat.h"

namespace spvit::train {

RunPrecision RunPrecision::from_config(const Config& config, const torch::Device& device) {
  RunPrecision p;
  p.device = device;
  p.param_dtype = parse_dtype(config.dtype);
  const std::string& mode = config.train.precision;
  if (mode == "fp32") return p;
  if (!device.is_cuda()) {
    SPVIT_THROW(ConfigError, "config key 'train.precision' = ", mode, " needs a CUDA device, but this run computes on ",
                device.str(), " (config key 'device' = ", config.device, "); CPU training runs in fp32");
  }
  if (config.dtype != "float32") {
    SPVIT_THROW(ConfigError, "config key 'train.precision' = ", mode, " needs 'dtype' = float32 (the master copy of",
                " the parameters), got ", config.dtype);
  }
  if (!compat::AutocastGuard::supported()) {
    SPVIT_THROW(ConfigError, "config key 'train.precision' = ", mode,
                " needs CUDA autocast from LibTorch >= 2.4; this build has LibTorch ", TORCH_VERSION);
  }
  p.autocast = true;
  p.autocast_dtype = mode == "bf16" ? torch::kBFloat16 : torch::kHalf;
  p.loss_scaling = mode == "fp16";
  return p;
}

std::string RunPrecision::describe() const {
  std::string out = device.str() + ", " + std::string(c10::toString(param_dtype)) + " parameters";
  if (autocast) out += std::string(", ") + (autocast_dtype == torch::kBFloat16 ? "bf16" : "fp16") + " autocast";
  if (loss_scaling) out += " with dynamic loss scaling";
  return out;
}

std::string RunPrecision::mode() const {
  if (!autocast) return "fp32";
  return autocast_dtype == torch::kBFloat16 ? "bf16" : "fp16";
}

struct ForwardPrecisionGuard::State {
  explicit State(const RunPrecision& p) : guard(p.device, p.autocast_dtype, true) {}
  compat::AutocastGuard guard;
};

ForwardPrecisionGuard::ForwardPrecisionGuard(const RunPrecision& p) {
  if (p.autocast) state_ = new State(p);
}

ForwardPrecisionGuard::~ForwardPrecisionGuard() { delete state_; }

}  // namespace spvit::train

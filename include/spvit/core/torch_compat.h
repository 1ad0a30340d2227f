// The one place where LibTorch versions differ (Debian's 1.13 on CPU machines, 2.x with CUDA on GPU machines).
#pragma once
#include <torch/torch.h>

#include <optional>
#include <utility>
#if TORCH_VERSION_MAJOR >= 2
#include <ATen/autocast_mode.h>
#endif

#if TORCH_VERSION_MAJOR >= 2
#define SPVIT_TORCH_HAS_SDPA 1  // at::scaled_dot_product_attention (fused flash / mem-efficient / cuDNN kernels)
#else
#define SPVIT_TORCH_HAS_SDPA 0
#endif

namespace spvit::compat {

// softmax(q·kᵀ/√d + mask)·v for q [B,H,Lq,D], k,v [B,H,Lk,D]. `key_mask` is undefined (all keys valid) or a bool
// tensor broadcastable to [B,H,Lq,Lk] that is true where a key may be attended to. Uses the fused SDPA kernel where
// this LibTorch has one and `allow_fused` is set, and the explicit math path otherwise.
inline torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v, const torch::Tensor& key_mask,
                                                  bool allow_fused = true) {
#if SPVIT_TORCH_HAS_SDPA
  if (allow_fused) {
    return at::scaled_dot_product_attention(q, k, v, key_mask.defined() ? c10::optional<at::Tensor>(key_mask)
                                                                        : c10::optional<at::Tensor>());
  }
#endif
  (void)allow_fused;
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;
  if (key_mask.defined()) {
    scores = scores.masked_fill(key_mask.logical_not(), -std::numeric_limits<double>::infinity());
  }
  return torch::matmul(torch::softmax(scores, -1), v);
}

// softmax(q·kᵀ/√d)·v and its log-sum-exp per query row, [B,H,Lq,D] and [B,H,Lq] float32, from LibTorch's fused
// memory-efficient attention kernel (the ring strategy merges blocks with it). CUDA tensors of float32, float16 or
// bfloat16 only; returns nothing where that kernel is absent (LibTorch 1.x, CPU, float64) or refuses the input, and
// the caller then uses the math path. The operator is looked up by name and called with its schema's defaults, so
// an argument added by a later LibTorch cannot break the build (the GPU tests check that it is found).
std::optional<std::pair<torch::Tensor, torch::Tensor>> fused_attention_with_lse(const torch::Tensor& q,
                                                                               const torch::Tensor& k,
                                                                               const torch::Tensor& v);

// Which fused kernel at::scaled_dot_product_attention may use on CUDA (process-wide, as in PyTorch):
//   auto      : every backend allowed, tried in the order cuDNN, flash, mem-efficient, math (on H100 cuDNN is the
//               fastest at every size we train: 0.47 ms vs 0.64 ms for PyTorch's default order at 4K tokens);
//   cudnn | flash | efficient | math : only that one (math is the reference the others are tested against).
// A no-op on LibTorch 1.x, which has no fused attention.
inline void set_attention_backend(const std::string& name) {
#if SPVIT_TORCH_HAS_SDPA
  auto& ctx = at::globalContext();
  const bool all = name == "auto";
  ctx.setSDPUseFlash(all || name == "flash");
  ctx.setSDPUseMemEfficient(all || name == "efficient");
  ctx.setSDPUseMath(all || name == "math");
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
  ctx.setSDPUseCuDNN(all || name == "cudnn");
  if (all) {
    // at::SDPBackend values: math 0, flash 1, efficient 2, cudnn 3.
    ctx.setSDPPriorityOrder({3, 1, 2, 0});
  }
#endif
#else
  (void)name;
#endif
}

// Mixed precision on CUDA for the scope of this guard (forward and loss; backward runs outside, as in PyTorch):
// matrix products and attention in `dtype` (bf16/fp16), reductions and norms in float32, float32 master weights.
// Disabled (a no-op) on the CPU and on LibTorch < 2.4, whose autocast API differs.
class AutocastGuard {
 public:
  AutocastGuard(const torch::Device& device, torch::ScalarType dtype, bool enabled) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    active_ = enabled && device.is_cuda();
    if (!active_) return;
    previous_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    previous_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
#else
    (void)device, (void)dtype, (void)enabled;
#endif
  }
  ~AutocastGuard() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    if (!active_) return;
    at::autocast::set_autocast_enabled(at::kCUDA, previous_enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, previous_dtype_);
    at::autocast::clear_cache();
#endif
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;
  static bool supported() {
    return TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4);
  }

 private:
  bool active_ = false;
  bool previous_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kBFloat16;
};

// This thread's CUDA autocast state. A checkpointed block captures it in forward and re-enters it for the recompute
// in backward (as torch.utils.checkpoint does): backward runs after the autocast scope has closed, on autograd's
// device threads, so without it the recompute would run in float32 — slower, and not the activations of forward.
struct AutocastState {
  bool enabled = false;
  torch::ScalarType dtype = torch::kBFloat16;
  static AutocastState current() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    return {at::autocast::is_autocast_enabled(at::kCUDA), at::autocast::get_autocast_dtype(at::kCUDA)};
#else
    return {};
#endif
  }
};

// PyTorch's fused multi-tensor AdamW kernel (CUDA, LibTorch >= 2.0): increments every `steps` entry by one, then
// updates params/exp_avgs/exp_avg_sqs in place with decoupled weight decay, exactly AdamW's formula.
inline bool fused_adamw_available() { return SPVIT_TORCH_HAS_SDPA; }
inline void fused_adamw(std::vector<torch::Tensor>& params, std::vector<torch::Tensor>& grads,
                        std::vector<torch::Tensor>& exp_avgs, std::vector<torch::Tensor>& exp_avg_sqs,
                        std::vector<torch::Tensor>& steps, double lr, double beta1, double beta2,
                        double weight_decay, double eps) {
#if SPVIT_TORCH_HAS_SDPA
  at::_foreach_add_(steps, 1);
  at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2,
                    weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false);
#else
  (void)params, (void)grads, (void)exp_avgs, (void)exp_avg_sqs, (void)steps, (void)lr, (void)beta1, (void)beta2,
      (void)weight_decay, (void)eps;
  throw std::runtime_error("fused AdamW needs LibTorch >= 2.0");
#endif
}

inline std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace spvit::compat

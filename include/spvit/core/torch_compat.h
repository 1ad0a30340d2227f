// The one place where LibTorch versions differ (Debian's 1.13 on CPU machines, 2.x with CUDA on GPU machines).
#pragma once
#include <torch/torch.h>

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

inline std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace spvit::compat

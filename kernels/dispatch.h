// Which path a kernel-layer operation takes for a tensor: a CUDA kernel (CUDA build, CUDA tensor of a type the
// kernels are instantiated for) or the LibTorch-op version, which is the CPU path and the reference, and also serves
// CUDA tensors the kernels do not cover (float64).
#pragma once
#include <torch/torch.h>

#include "spvit/build_info.h"

namespace spvit::kernels::detail {

inline bool kernel_dtype(torch::ScalarType t) {
  return t == torch::kFloat32 || t == torch::kFloat16 || t == torch::kBFloat16;
}

inline bool use_cuda_kernel(const torch::Tensor& t) {
#if SPVIT_HAVE_CUDA
  return t.is_cuda() && kernel_dtype(t.scalar_type());
#else
  (void)t;
  return false;
#endif
}

}  // namespace spvit::kernels::detail

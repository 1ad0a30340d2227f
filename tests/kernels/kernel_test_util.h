// Helpers for the kernel-layer tests: seeded inputs, misaligned tensors, dtype-scaled tolerances and the CUDA skip.
#pragma once
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "spvit/build_info.h"
#include "test_support.h"

namespace spvit::kernels::testing {

using spvit::testing::max_abs_diff;

inline at::Generator generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

// The CUDA kernels run only in a CUDA build on a machine with a GPU; elsewhere their tests are skipped.
inline bool cuda_ready() { return SPVIT_HAVE_CUDA && torch::cuda::is_available(); }
#define SPVIT_SKIP_WITHOUT_CUDA()                                                                 \
  do {                                                                                            \
    if (!::spvit::kernels::testing::cuda_ready())                                                 \
      GTEST_SKIP() << "needs a CUDA build and a GPU (SPVIT_HAVE_CUDA = " << SPVIT_HAVE_CUDA << ")"; \
  } while (0)

// Absolute tolerance for a value of magnitude `scale` computed in float and stored as `dtype` (a few ulps of it).
inline double tolerance(torch::ScalarType dtype, double scale = 1.0) {
  switch (dtype) {
    case torch::kBFloat16: return 2e-2 * scale;
    case torch::kFloat16: return 2e-3 * scale;
    case torch::kFloat32: return 1e-5 * scale;
    default: return 1e-12 * scale;
  }
}

// Seeded normal values in a contiguous tensor of `shape` whose data starts `offset` elements into its allocation:
// offset 0 is 16-byte aligned (the caching allocators align more), other offsets exercise the misaligned paths.
inline torch::Tensor seeded(const std::vector<int64_t>& shape, uint64_t seed, torch::TensorOptions options,
                            int64_t offset = 0) {
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  auto base = torch::randn({numel + offset}, generator(seed), torch::kFloat64).to(options);
  return base.narrow(0, offset, numel).view(shape);
}

}  // namespace spvit::kernels::testing

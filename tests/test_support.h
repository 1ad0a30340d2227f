// Helpers shared by the spvit tests.
#pragma once
#include <torch/torch.h>

#include <cmath>
#include <string>

namespace spvit::testing {

// The value of --grid given to the test binary ("" if none).
std::string requested_grid();

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return INFINITY;
  if (a.numel() == 0) return 0.0;
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace spvit::testing

// Helpers shared by the spvit tests.
#pragma once
#include <torch/torch.h>

#include <cmath>
#include <string>

namespace spvit::testing {

// The value of --grid given to the test binary ("" if none).
std::string requested_grid();

// The message of the exception of type E that `f` throws ("" if it throws none; other exceptions propagate).
template <class E, class F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return INFINITY;
  if (a.numel() == 0) return 0.0;
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace spvit::testing

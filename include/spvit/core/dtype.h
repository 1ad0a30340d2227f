// The one mapping from the configuration's parameter dtype names (config `dtype`, `spvit selftest --dtype`) to
// tensor types.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "spvit/core/error.h"

namespace spvit {

inline const std::vector<std::string>& dtype_names() {
  static const std::vector<std::string> names{"float32", "float64"};
  return names;
}

// float32 -> kFloat32, float64 -> kFloat64; ConfigError for any other name.
inline torch::ScalarType parse_dtype(const std::string& name) {
  if (name == dtype_names()[0]) return torch::kFloat32;
  if (name == dtype_names()[1]) return torch::kFloat64;
  SPVIT_THROW(ConfigError, "dtype '", name, "' is not one of float32, float64");
}

}  // namespace spvit

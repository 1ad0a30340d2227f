// What this binary was built with (reported by `spvit info` and at the top of every run's log).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace spvit {

// (name, description) pairs: version, LibTorch, then each feature as "ON (detail)" or "OFF": CUDA, NCCL, OpenCV,
// OpenSlide, HDF5, libtiff, infer.
std::vector<std::pair<std::string, std::string>> build_features();

}  // namespace spvit

// Images for the patcher's CLI, tests and benchmarks: reading/writing (OpenCV), drawing a layout, and a synthetic
// tissue-like generator (plain LibTorch) so that the patcher can be exercised at any size without data.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "spvit/patch/layout.h"

namespace spvit::patch {

// [H, W, C] uint8 in RGB order (C = 1 for grey images). Throws DataError naming the path when the file is missing
// or not a readable image, and Error when this build has no OpenCV.
torch::Tensor read_image(const std::string& path);
// Writes [H, W, C] uint8 (C = 1 or 3, RGB) to a PNG (or any extension OpenCV knows).
void write_image(const std::string& path, const torch::Tensor& image);

// The image with the borders of every 2D leaf drawn over it, scaled so that its longer side is at most
// `max_side` pixels (0 = full size). Colours go from red (smallest leaves) to blue (largest).
torch::Tensor draw_layout(const torch::Tensor& image, const PatchLayout& layout, int64_t max_side = 2048);

// A pathology-slide-like RGB image [side, side, 3] uint8: a flat bright background and smooth-edged tissue blobs
// (about `tissue_fraction` of the area) with stroma texture and dark nuclei. Deterministic for a seed.
torch::Tensor synthetic_tissue(int64_t side, uint64_t seed = 1, double tissue_fraction = 0.35);

}  // namespace spvit::patch

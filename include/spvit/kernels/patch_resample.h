// Batched extract and paste of adaptive-patch leaves (docs/adaptive-patching.md, "How it works", step 5), below the
// patch layer: leaves are plain (x, y, z, side) rows, so this layer needs no PatchLayout. CUDA tensors run the kernels
// of kernels/patch_resample.cu on the current stream; CPU tensors run LibTorch ops grouped by leaf side (the reference
// the kernels are tested against). Both compute what patch::extract_range / patch::paste_range compute for the same
// leaves (tested against them).
#pragma once
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <vector>

namespace spvit::kernels {

// Leaves as the kernels read them: int64 [n, 4] rows (x, y, z, side) in pixels (z = 0 in 2D; side 0 = an empty slot,
// which extracts to a zero token and pastes nothing). The vectors are per token; z may be empty (2D).
torch::Tensor make_leaves(const std::vector<int64_t>& x, const std::vector<int64_t>& y, const std::vector<int64_t>& z,
                          const std::vector<int64_t>& side);

// Where a channels-last pixel tensor ([H, W, C] or [D, H, W, C]) lies in its image. Coordinate order x, y, z.
struct LeafGeometry {
  int dims = 2;                           // spatial dimensions, 2 or 3
  int64_t patch = 16;                     // P
  int64_t channels = 1;                   // the pixel tensor's last dimension (C, or K for pasted maps)
  std::array<int64_t, 3> origin{0, 0, 0}; // image coordinate of the tensor's first pixel
  std::array<int64_t, 3> extent{1, 1, 1}; // the tensor's size along x, y, z (z = 1 in 2D)
  std::array<int64_t, 3> limit{1, 1, 1};  // the image's size along x, y, z: pixels beyond are zero padding
};

// Tokens [n, C·P^d] (channel-major C, P, P(, P) within a token) of the leaves, from `pixels`, the part of the image
// whose first pixel is at `origin` (x, y[, z]); `image_extent` (x, y[, z]) is the image's size. A leaf of side s is
// area-averaged over (s/P)^d blocks when s >= P and enlarged when s < P: bilinearly (trilinearly in 3D,
// align_corners = false), or by pixel replication with `nearest`. Pixels outside the image, or outside `pixels`,
// count as zero (callers pass a crop covering the leaves, as patch::extract_range requires). `pixels` is uint8,
// float32, float16 or bfloat16 (float64 on CPU); `dtype` is the tokens' type.
torch::Tensor extract_leaves(const torch::Tensor& pixels, const std::vector<int64_t>& origin,
                             const std::vector<int64_t>& image_extent, const torch::Tensor& leaves, int64_t patch,
                             bool nearest = false, torch::ScalarType dtype = torch::kFloat32);

// Paste: tokens [n, K·P^d] (each a K-channel P^d tile) -> the map region [lo, hi) (x, y[, z]) of an image of size
// `image_extent`, channels-last [hi - lo ..., K], in the tokens' dtype. A tile is enlarged to its leaf bilinearly
// (trilinearly) when the leaf is larger than P and area-averaged when smaller. Pixels that no leaf covers, and pixels
// outside the image, are zero. Leaves must not overlap.
torch::Tensor paste_leaves(const torch::Tensor& tokens, const torch::Tensor& leaves, int64_t patch,
                           const std::vector<int64_t>& lo, const std::vector<int64_t>& hi,
                           const std::vector<int64_t>& image_extent);

}  // namespace spvit::kernels

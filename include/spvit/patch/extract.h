// Extract (image -> tokens) and paste (token tiles -> image) for any PatchLayout, as batched tensor operations:
// leaves are grouped by level (one side per group) and each group is gathered from a blocked view of the image,
// resized to P×P in one call, and scattered back the same way. No per-leaf loop touches pixels, and every step is
// a plain LibTorch op, so the same code runs on CPU and CUDA tensors.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "spvit/patch/layout.h"

namespace spvit::patch {

struct ExtractOptions {
  // Leaves smaller than P: "bilinear" (trilinear in 3D; smooth tiles) or "nearest" (exact pixel replication).
  std::string enlarge = "bilinear";
  torch::ScalarType dtype = torch::kFloat32;  // token dtype; uint8 images are converted (values stay 0..255)
  int64_t chunk_elements = int64_t{1} << 22;  // bounds one batched gather (small chunks stay in cache)
};

// Tokens [L, C·P^d] of `image` ([H, W, C] or [D, H, W, C]; image_size must match the layout). Channel-major
// within a token (C, P, P), as the classic unfold / Conv2d patch embedding. Leaves larger than P are area-averaged,
// smaller ones enlarged. Padding pixels are zero; empty slots and leaves wholly in the padding give zero tokens.
torch::Tensor extract(const torch::Tensor& image, const PatchLayout& layout, const ExtractOptions& options = {});

// Tokens [end - begin, C·P^d] for the token range [begin, end) from `crop`, the part of the image whose first
// pixel is at `origin` (coordinate order x, y[, z]); the crop must cover the range's box (see sequence_segments).
torch::Tensor extract_range(const torch::Tensor& crop, const std::vector<int64_t>& origin, const PatchLayout& layout,
                            int64_t begin, int64_t end, const ExtractOptions& options = {});

// The image region [lo, hi) (coordinate order) as a view of a full image tensor.
torch::Tensor crop(const torch::Tensor& image, const std::vector<int64_t>& lo, const std::vector<int64_t>& hi);

// Paste: tokens [L, K·P^d] (each a K-channel P×P tile, e.g. logits) -> map [H, W, K] ([D, H, W, K]). A tile is
// resized to its leaf bilinearly (trilinearly) when the leaf is larger than P and area-averaged when smaller.
torch::Tensor paste(const torch::Tensor& tokens, const PatchLayout& layout);

// Paste for the token range [begin, end) into the region [lo, hi) (coordinate order): map [hi - lo ..., K]. Pixels
// of the region not covered by the range's leaves are zero.
torch::Tensor paste_range(const torch::Tensor& tokens, const PatchLayout& layout, int64_t begin, int64_t end,
                          const std::vector<int64_t>& lo, const std::vector<int64_t>& hi);

// What the encoder needs per token of [begin, end) (end -1 = L): the global token index, coordinates for the
// coordinate positional encoding (centre x/S, y/S[, z/S], then log2(side)/log2(S); zeros for empty slots) and the
// key-valid mask (false for empty slots).
struct LayoutMetadata {
  torch::Tensor index;   // [n] int64
  torch::Tensor coords;  // [n, spatial_dims + 1] float32
  torch::Tensor valid;   // [n] bool
};
LayoutMetadata token_metadata(const PatchLayout& layout, int64_t begin = 0, int64_t end = -1,
                              torch::Device device = torch::kCPU);

}  // namespace spvit::patch

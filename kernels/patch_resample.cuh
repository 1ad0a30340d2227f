// Launchers of the batched adaptive-patch kernels (patch_resample.cu): extract (image pixels -> P×P(×P) tiles of
// every leaf, one token each) and paste (tiles -> pixels). Raw pointers and sizes only; the same math as
// src/patch/extract.cpp's tensor-op version, which the tests compare against.
//
// Leaves: int64 [count, 4] rows (x, y, z, side) in pixels, z = 0 in 2D, side 0 = no leaf (an empty slot: a zero
// token, nothing pasted). Pixel tensors are channels-last, [H, W, C] or [D, H, W, C], and hold the pixels
// [origin, origin + extent) of an image whose pixels at or beyond `limit` are zero padding. Tokens are channel-major
// [count, C, P, P(, P)], as the classic unfold.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace spvit::kernels {

struct PatchGeometry {
  int dims = 2;                  // spatial dimensions, 2 or 3
  int64_t patch = 16;            // P
  int64_t channels = 1;          // C (extract) or K (paste): the pixel tensor's last dimension
  int64_t origin[3] = {0, 0, 0}; // coordinate (x, y, z) of the pixel tensor's first pixel
  int64_t extent[3] = {1, 1, 1}; // the pixel tensor's size along x, y, z (z = 1 in 2D)
  int64_t limit[3] = {1, 1, 1};  // the image's size along x, y, z
};

// Extract for one group of leaves of equal side `side` (the host groups leaves by side, as the patch layer does):
// tokens[t] for each t in `group_tokens` (device, `count` rows of `leaves` and of `tokens`) = the leaf's pixels
// resized to P: area mean over (s/P)^d blocks when s >= P, bilinear (trilinear; align_corners = false) or nearest
// enlargement when s < P. Pixels outside the image or the pixel tensor count as zero. TIn is uint8_t, float, __half
// or __nv_bfloat16; TOut float, __half or __nv_bfloat16. `leaves` is device memory.
template <typename TIn, typename TOut>
cudaError_t launch_extract_leaves(const TIn* pixels, const int64_t* leaves, const int64_t* group_tokens, int64_t count,
                                  int64_t side, TOut* tokens, PatchGeometry geometry, bool nearest,
                                  cudaStream_t stream);

// Writes every leaf pixel inside both the pixel tensor and the image: the tile resized to s, bilinearly
// (trilinearly) when s > P and by area mean when s < P. Other pixels are left as they are (callers zero them).
// `row_groups` (device, `group_count` triples of int32) lists the work: (leaf, first row, rows), a row being
// ly + s·lz within the leaf, at most kPasteGroupPixels pixels per group; one block pastes one group, so no thread
// searches for its leaf. T is float, __half or __nv_bfloat16.
constexpr int kPasteGroupPixels = 2048;  // 8 pixels per thread of a 256-thread block
template <typename T>
cudaError_t launch_paste_leaves(const T* tokens, const int64_t* leaves, const int32_t* row_groups, int64_t group_count,
                                T* pixels, PatchGeometry geometry, cudaStream_t stream);

}  // namespace spvit::kernels

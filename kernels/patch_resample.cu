// Batched adaptive-patch extract and paste (see patch_resample.cuh). Extract: one thread per token value (token,
// channel, tile pixel). Paste: one block per group of leaf rows, one thread per leaf pixel (all K channels).
// Consecutive threads write consecutive elements (coalesced); reads are gathers through the resampling, so accesses
// are per element (no 16-byte packs).
// Resampling follows LibTorch's CPU interpolate (align_corners = false, float source coordinates) and the patch
// layer's area mean, so results match src/patch/extract.cpp up to float rounding.
#include "cuda_common.cuh"
#include "patch_resample.cuh"

namespace spvit::kernels {
namespace {

using namespace cuda_detail;

struct Leaf {
  int64_t corner[3];
  int64_t side;
};

__device__ __forceinline__ Leaf load_leaf(const int64_t* leaves, int64_t i) {
  const int64_t* row = leaves + 4 * i;
  return {{row[0], row[1], row[2]}, row[3]};
}

// Linear interpolation taps along one axis for output index `out` of `out_size` from `in_size` samples, as
// LibTorch's area_pixel_compute_source_index + guard_index_and_lambda (align_corners = false).
struct Taps {
  int64_t i0, i1;
  float w0, w1;
};
__device__ __forceinline__ Taps linear_taps(int64_t out, int64_t in_size, int64_t out_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  float src = scale * (static_cast<float>(out) + 0.5f) - 0.5f;
  if (src < 0.0f) src = 0.0f;
  int64_t i0 = static_cast<int64_t>(floorf(src));
  if (i0 > in_size - 1) i0 = in_size - 1;
  const float w1 = fminf(fmaxf(src - static_cast<float>(i0), 0.0f), 1.0f);
  return {i0, i0 + (i0 < in_size - 1 ? 1 : 0), 1.0f - w1, w1};
}

// Nearest tap for enlargement by a power of two (LibTorch's "nearest": floor(out · in / out_size)).
__device__ __forceinline__ int64_t nearest_tap(int64_t out, int64_t in_size, int64_t out_size) {
  const int64_t i = out * in_size / out_size;
  return i < in_size ? i : in_size - 1;
}

// The pixel tensor's value at image coordinate g (zero outside the image or the tensor).
template <typename TIn>
__device__ __forceinline__ float pixel(const TIn* pixels, const PatchGeometry& g, const int64_t* at, int64_t c) {
  int64_t offset = 0;
  for (int a = g.dims - 1; a >= 0; --a) {
    const int64_t local = at[a] - g.origin[a];
    if (at[a] >= g.limit[a] || local < 0 || local >= g.extent[a]) return 0.0f;
    offset = offset * g.extent[a] + local;
  }
  return to_float(pixels[offset * g.channels + c]);
}

template <typename TIn, typename TOut>
__global__ void extract_leaves_kernel(const TIn* __restrict__ pixels, const int64_t* __restrict__ leaves,
                                      int64_t count, TOut* __restrict__ tokens, PatchGeometry g, bool nearest) {
  const int64_t P = g.patch, tile = g.dims == 3 ? P * P * P : P * P, per_token = g.channels * tile;
  const int64_t total = count * per_token;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    const int64_t token = i / per_token, c = (i % per_token) / tile, p = i % tile;
    const int64_t tp[3] = {p % P, (p / P) % P, p / (P * P)};  // tile pixel (x, y, z)
    const Leaf leaf = load_leaf(leaves, token);
    const int64_t s = leaf.side;
    float value = 0.0f;
    int64_t at[3] = {leaf.corner[0], leaf.corner[1], leaf.corner[2]};
    if (s >= P) {
      // Area mean over an f^d block; double because 3D blocks of 8-bit values overflow float's exact integers.
      const int64_t f = s / P, fz = g.dims == 3 ? f : 1;
      double sum = 0.0;
      for (int64_t dz = 0; dz < fz; ++dz) {
        for (int64_t dy = 0; dy < f; ++dy) {
          for (int64_t dx = 0; dx < f; ++dx) {
            at[0] = leaf.corner[0] + tp[0] * f + dx;
            at[1] = leaf.corner[1] + tp[1] * f + dy;
            at[2] = leaf.corner[2] + tp[2] * f + dz;
            sum += pixel(pixels, g, at, c);
          }
        }
      }
      value = static_cast<float>(sum / static_cast<double>(f * f * fz));
    } else if (s > 0 && nearest) {
      for (int a = 0; a < g.dims; ++a) at[a] = leaf.corner[a] + nearest_tap(tp[a], s, P);
      value = pixel(pixels, g, at, c);
    } else if (s > 0) {
      Taps taps[3];
      for (int a = 0; a < g.dims; ++a) taps[a] = linear_taps(tp[a], s, P);
      const int corners = 1 << g.dims;
      for (int corner = 0; corner < corners; ++corner) {
        float weight = 1.0f;
        for (int a = 0; a < g.dims; ++a) {
          const bool hi = (corner >> a) & 1;
          at[a] = leaf.corner[a] + (hi ? taps[a].i1 : taps[a].i0);
          weight *= hi ? taps[a].w1 : taps[a].w0;
        }
        value += weight * pixel(pixels, g, at, c);
      }
    }
    tokens[i] = from_float<TOut>(value);
  }
}

// One block per row group (leaf, first row, rows): thread t walks the group's pixels p = t, t + blockDim, ...
// (row r = p / s, x = p % s) and writes the pixel's K channels.
template <typename T>
__global__ void paste_leaves_kernel(const T* __restrict__ tokens, const int64_t* __restrict__ leaves,
                                    const int32_t* __restrict__ row_groups, T* __restrict__ pixels, PatchGeometry g) {
  const int32_t* group = row_groups + 3 * static_cast<int64_t>(blockIdx.x);
  const int64_t token = group[0];
  const Leaf leaf = load_leaf(leaves, token);
  const int s = static_cast<int>(leaf.side), P = static_cast<int>(g.patch), K = static_cast<int>(g.channels);
  const int tile = g.dims == 3 ? P * P * P : P * P;
  const int first_row = group[1], pixels_in_group = group[2] * s;
  for (int p = threadIdx.x; p < pixels_in_group; p += blockDim.x) {
    const int row = first_row + p / s;
    const int lp[3] = {p % s, row % s, row / s};  // pixel within the leaf (x, y, z)
    int64_t offset = 0;
    bool inside = true;
    for (int a = g.dims - 1; a >= 0; --a) {
      const int64_t at = leaf.corner[a] + lp[a], local_at = at - g.origin[a];
      inside = inside && at < g.limit[a] && local_at >= 0 && local_at < g.extent[a];
      offset = offset * g.extent[a] + local_at;
    }
    if (!inside) continue;
    // Source taps (s > P: linear interpolation of the tile) or the f^d block (s <= P: area mean, f = 1 a copy).
    Taps taps[3] = {{0, 0, 1.0f, 0.0f}, {0, 0, 1.0f, 0.0f}, {0, 0, 1.0f, 0.0f}};
    if (s > P) {
      for (int a = 0; a < g.dims; ++a) taps[a] = linear_taps(lp[a], P, s);
    }
    const int f = s > P ? 1 : P / s, fz = g.dims == 3 ? f : 1;
    for (int k = 0; k < K; ++k) {
      const T* t = tokens + (token * K + k) * tile;  // the channel's P^d tile, (z, y, x) order
      float value = 0.0f;
      if (s > P) {
        for (int corner = 0; corner < (1 << g.dims); ++corner) {
          float weight = 1.0f;
          int64_t idx[3] = {0, 0, 0};
          for (int a = 0; a < g.dims; ++a) {
            const bool hi = (corner >> a) & 1;
            idx[a] = hi ? taps[a].i1 : taps[a].i0;
            weight *= hi ? taps[a].w1 : taps[a].w0;
          }
          value += weight * to_float(t[(idx[2] * P + idx[1]) * P + idx[0]]);
        }
      } else {
        for (int dz = 0; dz < fz; ++dz)
          for (int dy = 0; dy < f; ++dy)
            for (int dx = 0; dx < f; ++dx)
              value += to_float(t[((lp[2] * f + dz) * P + lp[1] * f + dy) * P + lp[0] * f + dx]);
        value /= static_cast<float>(f * f * fz);
      }
      pixels[offset * K + k] = from_float<T>(value);
    }
  }
}

}  // namespace

template <typename TIn, typename TOut>
cudaError_t launch_extract_leaves(const TIn* pixels, const int64_t* leaves, int64_t count, TOut* tokens,
                                  PatchGeometry geometry, bool nearest, cudaStream_t stream) {
  const int64_t P = geometry.patch, tile = geometry.dims == 3 ? P * P * P : P * P;
  const int64_t total = count * geometry.channels * tile;
  if (total == 0) return cudaSuccess;
  extract_leaves_kernel<TIn, TOut><<<blocks_for(total), kThreads, 0, stream>>>(pixels, leaves, count, tokens,
                                                                                geometry, nearest);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_paste_leaves(const T* tokens, const int64_t* leaves, const int32_t* row_groups, int64_t group_count,
                                T* pixels, PatchGeometry geometry, cudaStream_t stream) {
  if (group_count == 0) return cudaSuccess;
  if (group_count > 0x7fffffff) return cudaErrorInvalidValue;
  paste_leaves_kernel<T><<<static_cast<unsigned>(group_count), kPasteGroupPixels, 0, stream>>>(tokens, leaves,
                                                                                                 row_groups, pixels,
                                                                                                 geometry);
  return cudaGetLastError();
}

#define SPVIT_INSTANTIATE_EXTRACT(TIn, TOut)                                                                   \
  template cudaError_t launch_extract_leaves<TIn, TOut>(const TIn*, const int64_t*, int64_t, TOut*,           \
                                                        PatchGeometry, bool, cudaStream_t);
#define SPVIT_INSTANTIATE_PATCH(T)                                                                             \
  SPVIT_INSTANTIATE_EXTRACT(uint8_t, T)                                                                        \
  SPVIT_INSTANTIATE_EXTRACT(float, T)                                                                          \
  SPVIT_INSTANTIATE_EXTRACT(__half, T)                                                                         \
  SPVIT_INSTANTIATE_EXTRACT(__nv_bfloat16, T)                                                                  \
  template cudaError_t launch_paste_leaves<T>(const T*, const int64_t*, const int32_t*, int64_t, T*,             \
                                              PatchGeometry, cudaStream_t);
SPVIT_INSTANTIATE_PATCH(float)
SPVIT_INSTANTIATE_PATCH(__half)
SPVIT_INSTANTIATE_PATCH(__nv_bfloat16)
#undef SPVIT_INSTANTIATE_PATCH
#undef SPVIT_INSTANTIATE_EXTRACT

}  // namespace spvit::kernels

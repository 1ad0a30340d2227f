// Batched adaptive-patch extract and paste (see patch_resample.cuh). Extract: one launch per leaf side, one thread
// (or a few lanes of a warp, for big leaves) per token pixel, all channels at once. Paste: one block per group of
// leaf rows, one thread per leaf pixel (all K channels).
// Consecutive threads write consecutive elements (coalesced); reads are gathers through the resampling, so accesses
// are per element (no 16-byte packs).
// Resampling follows LibTorch's CPU interpolate (align_corners = false, float source coordinates) and the patch
// layer's area mean, so results match src/patch/extract.cpp up to float rounding.
#include "cuda_common.cuh"
#include "patch_resample.cuh"

namespace spvit::kernels {
namespace {

using namespace cuda_detail;

constexpr int kChannelChunk = 4;  // channels accumulated in registers at once

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

// The readable pixels: the pixel tensor ∩ the image, per axis [origin, end). DIMS is a template parameter so that
// every per-axis loop unrolls and the small coordinate arrays stay in registers (runtime-indexed arrays would live in
// local memory, which made the first version of these kernels ~50x slower).
template <int DIMS>
struct Window {
  int64_t origin[DIMS], end[DIMS], extent[DIMS];
  __device__ explicit Window(const PatchGeometry& g) {
#pragma unroll
    for (int a = 0; a < DIMS; ++a) {
      origin[a] = g.origin[a];
      extent[a] = g.extent[a];
      end[a] = g.origin[a] + g.extent[a] < g.limit[a] ? g.origin[a] + g.extent[a] : g.limit[a];
    }
  }
  __device__ bool inside(const int64_t* at) const {
    bool ok = true;
#pragma unroll
    for (int a = 0; a < DIMS; ++a) ok = ok && at[a] >= origin[a] && at[a] < end[a];
    return ok;
  }
  __device__ int64_t offset(const int64_t* at) const {  // pixel index in the channels-last tensor
    int64_t o = 0;
#pragma unroll
    for (int a = DIMS - 1; a >= 0; --a) o = o * extent[a] + (at[a] - origin[a]);
    return o;
  }
};

// acc[k] += weight · pixel channel c0 + k, for the channels of this chunk.
template <typename TIn>
__device__ __forceinline__ void add_channels(float* acc, const TIn* px, int c0, int C, float weight) {
#pragma unroll
  for (int k = 0; k < kChannelChunk; ++k) {
    if (c0 + k < C) acc[k] += weight * to_float(px[c0 + k]);
  }
}

// One group of leaves of side s. Thread i = (member, tile pixel p, lane): for s > P the `lanes` threads of an output
// split its f^d block by columns (consecutive lanes read consecutive pixels) and add their sums with warp shuffles;
// otherwise lanes = 1. All C channels of a pixel are read together (chunks of kChannelChunk in registers).
template <typename TIn, typename TOut, int DIMS>
__global__ void extract_group_kernel(const TIn* __restrict__ pixels, const int64_t* __restrict__ leaves,
                                     const int64_t* __restrict__ group_tokens, int64_t count, int s, int lanes,
                                     TOut* __restrict__ tokens, PatchGeometry g, bool nearest) {
  const int P = static_cast<int>(g.patch), C = static_cast<int>(g.channels);
  const int tile = DIMS == 3 ? P * P * P : P * P;
  const int64_t i = global_thread(), q = i / lanes;
  const int lane = static_cast<int>(i - q * lanes);
  const bool active = q < count * tile;  // inactive threads still join the shuffles (no early return)
  const int64_t member = active ? q / tile : 0;
  const int p = static_cast<int>(q - member * tile);
  const int64_t token = active ? group_tokens[member] : 0;
  const Leaf leaf = load_leaf(leaves, active ? token : group_tokens[0]);
  const int tp[3] = {p % P, (p / P) % P, p / (P * P)};  // tile pixel (x, y, z)
  const Window<DIMS> w(g);
  const int f = s >= P ? s / P : 1, fz = DIMS == 3 ? f : 1;
  for (int c0 = 0; c0 < C; c0 += kChannelChunk) {
    float acc[kChannelChunk] = {0.0f, 0.0f, 0.0f, 0.0f};
    int64_t at[DIMS];
    if (active && s >= P) {
      // Area mean: rows of the f^d block, each lane taking columns lane, lane + lanes, ...
      int64_t start[DIMS];
#pragma unroll
      for (int a = 0; a < DIMS; ++a) start[a] = leaf.corner[a] + static_cast<int64_t>(tp[a]) * f;
      for (int dz = 0; dz < fz; ++dz) {
        for (int dy = 0; dy < f; ++dy) {
          at[1] = start[1] + dy;
          if constexpr (DIMS == 3) at[2] = start[2] + dz;
          for (int dx = lane; dx < f; dx += lanes) {
            at[0] = start[0] + dx;
            if (w.inside(at)) add_channels(acc, pixels + w.offset(at) * C, c0, C, 1.0f);
          }
        }
      }
    } else if (active && nearest) {
#pragma unroll
      for (int a = 0; a < DIMS; ++a) at[a] = leaf.corner[a] + nearest_tap(tp[a], s, P);
      if (w.inside(at)) add_channels(acc, pixels + w.offset(at) * C, c0, C, 1.0f);
    } else if (active) {
      Taps taps[DIMS];
#pragma unroll
      for (int a = 0; a < DIMS; ++a) taps[a] = linear_taps(tp[a], s, P);
#pragma unroll
      for (int corner = 0; corner < (1 << DIMS); ++corner) {
        float weight = 1.0f;
#pragma unroll
        for (int a = 0; a < DIMS; ++a) {
          const bool hi = (corner >> a) & 1;
          at[a] = leaf.corner[a] + (hi ? taps[a].i1 : taps[a].i0);
          weight *= hi ? taps[a].w1 : taps[a].w0;
        }
        if (w.inside(at)) add_channels(acc, pixels + w.offset(at) * C, c0, C, weight);
      }
    }
    for (int offset = lanes / 2; offset > 0; offset /= 2) {
#pragma unroll
      for (int k = 0; k < kChannelChunk; ++k) acc[k] += __shfl_xor_sync(0xffffffffu, acc[k], offset);
    }
    if (active && lane == 0) {
      const float norm = 1.0f / static_cast<float>(f * f * fz);
#pragma unroll
      for (int k = 0; k < kChannelChunk; ++k) {
        if (c0 + k < C) tokens[(token * C + c0 + k) * tile + p] = from_float<TOut>(acc[k] * norm);
      }
    }
  }
}

// One block per row group (leaf, first row, rows): thread t walks the group's pixels p = t, t + blockDim, ...
// (row r = p / s, x = p % s) and writes the pixel's K channels.
template <typename T, int DIMS>
__global__ void paste_leaves_kernel(const T* __restrict__ tokens, const int64_t* __restrict__ leaves,
                                    const int32_t* __restrict__ row_groups, T* __restrict__ pixels, PatchGeometry g) {
  const int32_t* group = row_groups + 3 * static_cast<int64_t>(blockIdx.x);
  const int64_t token = group[0];
  const Leaf leaf = load_leaf(leaves, token);
  const int s = static_cast<int>(leaf.side), P = static_cast<int>(g.patch), K = static_cast<int>(g.channels);
  const int tile = DIMS == 3 ? P * P * P : P * P;
  const int first_row = group[1], pixels_in_group = group[2] * s;
  const int f = s > P ? 1 : P / s, fz = DIMS == 3 ? f : 1;
  const Window<DIMS> w(g);
  for (int p = threadIdx.x; p < pixels_in_group; p += blockDim.x) {
    const int row = first_row + p / s;
    const int lp[3] = {p % s, row % s, row / s};  // pixel within the leaf (x, y, z)
    int64_t at[DIMS];
#pragma unroll
    for (int a = 0; a < DIMS; ++a) at[a] = leaf.corner[a] + lp[a];
    if (!w.inside(at)) continue;
    const int64_t out = w.offset(at) * K;
    Taps taps[DIMS];
    if (s > P) {
#pragma unroll
      for (int a = 0; a < DIMS; ++a) taps[a] = linear_taps(lp[a], P, s);
    }
    for (int k = 0; k < K; ++k) {
      const T* t = tokens + (token * K + k) * tile;  // the channel's P^d tile, (z, y, x) order
      float value = 0.0f;
      if (s > P) {
        // Linear interpolation of the tile.
#pragma unroll
        for (int corner = 0; corner < (1 << DIMS); ++corner) {
          float weight = 1.0f;
          int idx = 0;
#pragma unroll
          for (int a = DIMS - 1; a >= 0; --a) {
            const bool hi = (corner >> a) & 1;
            idx = idx * P + static_cast<int>(hi ? taps[a].i1 : taps[a].i0);
            weight *= hi ? taps[a].w1 : taps[a].w0;
          }
          value += weight * to_float(t[idx]);
        }
      } else {
        // Area mean of the (P/s)^d tile pixels under this leaf pixel (f = 1: a copy).
        for (int dz = 0; dz < fz; ++dz)
          for (int dy = 0; dy < f; ++dy)
            for (int dx = 0; dx < f; ++dx) {
              const int z = DIMS == 3 ? lp[2] * f + dz : 0;
              value += to_float(t[(z * P + lp[1] * f + dy) * P + lp[0] * f + dx]);
            }
        value /= static_cast<float>(f * f * fz);
      }
      pixels[out + k] = from_float<T>(value);
    }
  }
}

}  // namespace

template <typename TIn, typename TOut>
cudaError_t launch_extract_leaves(const TIn* pixels, const int64_t* leaves, const int64_t* group_tokens, int64_t count,
                                  int64_t side, TOut* tokens, PatchGeometry geometry, bool nearest,
                                  cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const int64_t P = geometry.patch, tile = geometry.dims == 3 ? P * P * P : P * P, f = side > P ? side / P : 1;
  const int lanes = f < 32 ? static_cast<int>(f) : 32;  // a power of two: side / P is one
  const int64_t blocks = (count * tile * lanes + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffff || side > 0x7fffffff || (lanes & (lanes - 1)) != 0) return cudaErrorInvalidValue;
  const auto s = static_cast<int>(side);
  if (geometry.dims == 3) {
    extract_group_kernel<TIn, TOut, 3><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        pixels, leaves, group_tokens, count, s, lanes, tokens, geometry, nearest);
  } else {
    extract_group_kernel<TIn, TOut, 2><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        pixels, leaves, group_tokens, count, s, lanes, tokens, geometry, nearest);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_paste_leaves(const T* tokens, const int64_t* leaves, const int32_t* row_groups, int64_t group_count,
                                T* pixels, PatchGeometry geometry, cudaStream_t stream) {
  if (group_count == 0) return cudaSuccess;
  if (group_count > 0x7fffffff) return cudaErrorInvalidValue;
  const auto blocks = static_cast<unsigned>(group_count);
  if (geometry.dims == 3) {
    paste_leaves_kernel<T, 3><<<blocks, kThreads, 0, stream>>>(tokens, leaves, row_groups, pixels, geometry);
  } else {
    paste_leaves_kernel<T, 2><<<blocks, kThreads, 0, stream>>>(tokens, leaves, row_groups, pixels, geometry);
  }
  return cudaGetLastError();
}

#define SPVIT_INSTANTIATE_EXTRACT(TIn, TOut)                                                                   \
  template cudaError_t launch_extract_leaves<TIn, TOut>(const TIn*, const int64_t*, const int64_t*, int64_t,   \
                                                        int64_t, TOut*, PatchGeometry, bool, cudaStream_t);
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

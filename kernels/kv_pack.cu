// The fused K‖V communication kernels of the LSS attention (docs/sequence-parallel.md, step 2 and its backward);
// layouts in kv_pack.cuh. Every kernel is a permuted copy whose contiguous runs are D (q, k, v) or E (kv) elements
// long, so a thread moves one 16-byte pack when D·sizeof(T) is a multiple of 16 and the pointers are 16-byte aligned
// (D = 64 in bf16 is 8 packs per head), and one element otherwise. The host picks the width once per launch.
// Limits: B·L·2 and 3E below 2^31 (32-bit row arithmetic); launchers return cudaErrorInvalidValue beyond.
#include "cuda_common.cuh"
#include "kv_pack.cuh"

namespace spvit::kernels {
namespace {

using namespace cuda_detail;

// Each kernel runs over rows × columns of its contiguous side: a row is one (b, t) or (t, j, b) position, a column
// one pack of it. Column-derived indices (head, pack within the head) are computed once per thread; only the row is
// divided per pack, in 32-bit arithmetic (64-bit division would make these copies compute-bound).
struct Grid {
  dim3 blocks, threads;
};
Grid row_grid(int64_t rows, int64_t cols) {
  const int64_t per_row_blocks = (cols + kThreads - 1) / kThreads;
  const int64_t threads = ((cols + per_row_blocks - 1) / per_row_blocks + 31) / 32 * 32;  // little idle tail
  const int64_t y = rows < kMaxBlocks ? rows : kMaxBlocks;
  return {dim3(static_cast<unsigned>(per_row_blocks), static_cast<unsigned>(y < 1 ? 1 : y)),
          dim3(static_cast<unsigned>(threads))};
}

// Sizes in packs of V elements.
struct PackDims {
  int B, T, H, DU, EU;
};
template <int V>
PackDims pack_dims(const KvShape& s) {
  const int DU = static_cast<int>(s.head_dim / V);
  return {static_cast<int>(s.batch), static_cast<int>(s.tokens), static_cast<int>(s.heads), DU,
          static_cast<int>(s.heads) * DU};
}

// A pack index into [B, H, T, D/V] (heads layout).
__device__ __forceinline__ int64_t heads_index(int b, int h, int t, int du, const PackDims& d) {
  return ((static_cast<int64_t>(b) * d.H + h) * d.T + t) * d.DU + du;
}

// Rows (b, t) of qkv [B, T, 3, E]; column c = part · EU + eu.
template <typename T, int V>
__global__ void split_qkv_kernel(const T* __restrict__ qkv, T* __restrict__ q, T* __restrict__ kv, PackDims d) {
  using P = Pack<T, V>;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= 3 * d.EU) return;
  const int part = c / d.EU, eu = c - part * d.EU, h = eu / d.DU, du = eu - h * d.DU;
  for (int row = blockIdx.y; row < d.B * d.T; row += gridDim.y) {
    const int b = row / d.T, t = row - b * d.T;
    const P value = reinterpret_cast<const P*>(qkv)[static_cast<int64_t>(row) * 3 * d.EU + c];
    if (part == 0) reinterpret_cast<P*>(q)[heads_index(b, h, t, du, d)] = value;
    else reinterpret_cast<P*>(kv)[((static_cast<int64_t>(t) * 2 + (part - 1)) * d.B + b) * d.EU + eu] = value;
  }
}

// Rows (t, j, b) of gathered [T, 2, B, E]; column eu.
template <typename T, int V>
__global__ void unpack_kv_kernel(const T* __restrict__ gathered, T* __restrict__ k, T* __restrict__ v, PackDims d) {
  using P = Pack<T, V>;
  const int eu = blockIdx.x * blockDim.x + threadIdx.x;
  if (eu >= d.EU) return;
  const int h = eu / d.DU, du = eu - h * d.DU;
  for (int row = blockIdx.y; row < d.T * 2 * d.B; row += gridDim.y) {
    const int b = row % d.B, tj = row / d.B, j = tj & 1, t = tj >> 1;
    P* out = reinterpret_cast<P*>(j == 0 ? k : v);
    out[heads_index(b, h, t, du, d)] = reinterpret_cast<const P*>(gathered)[static_cast<int64_t>(row) * d.EU + eu];
  }
}

// Rows (t, j, b) of dkv [T, 2, B, E]; column eu.
template <typename T, int V>
__global__ void pack_kv_grad_kernel(const T* __restrict__ dk, const T* __restrict__ dv, T* __restrict__ dkv,
                                    PackDims d) {
  using P = Pack<T, V>;
  const int eu = blockIdx.x * blockDim.x + threadIdx.x;
  if (eu >= d.EU) return;
  const int h = eu / d.DU, du = eu - h * d.DU;
  for (int row = blockIdx.y; row < d.T * 2 * d.B; row += gridDim.y) {
    const int b = row % d.B, tj = row / d.B, j = tj & 1, t = tj >> 1;
    const P* in = reinterpret_cast<const P*>(j == 0 ? dk : dv);
    reinterpret_cast<P*>(dkv)[static_cast<int64_t>(row) * d.EU + eu] =
        in ? in[heads_index(b, h, t, du, d)] : zero_pack<T, V>();
  }
}

// Rows (b, t) of dqkv [B, T, 3, E]; column c = part · EU + eu.
template <typename T, int V>
__global__ void merge_qkv_grad_kernel(const T* __restrict__ dq, const T* __restrict__ dkv, T* __restrict__ dqkv,
                                      bool accumulate, PackDims d) {
  using P = Pack<T, V>;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= 3 * d.EU) return;
  const int part = c / d.EU, eu = c - part * d.EU, h = eu / d.DU, du = eu - h * d.DU;
  for (int row = blockIdx.y; row < d.B * d.T; row += gridDim.y) {
    const int b = row / d.T, t = row - b * d.T;
    P value = zero_pack<T, V>();
    if (part == 0) {
      if (dq) value = reinterpret_cast<const P*>(dq)[heads_index(b, h, t, du, d)];
    } else if (dkv) {
      value = reinterpret_cast<const P*>(dkv)[((static_cast<int64_t>(t) * 2 + (part - 1)) * d.B + b) * d.EU + eu];
    }
    P* out = reinterpret_cast<P*>(dqkv) + static_cast<int64_t>(row) * 3 * d.EU + c;
    if (accumulate) {
      const P old = *out;
#pragma unroll
      for (int e = 0; e < V; ++e) value.x[e] = from_float<T>(to_float(old.x[e]) + to_float(value.x[e]));
    }
    *out = value;
  }
}

// 16-byte packs when every pointer is 16-byte aligned and a head's D elements are whole packs.
template <typename T>
bool use_packs(const KvShape& s, const void* a, const void* b, const void* c) {
  const bool aligned = (!a || aligned16(a)) && (!b || aligned16(b)) && (!c || aligned16(c));
  return aligned && s.head_dim % vec16<T>() == 0;
}

// Row counts and columns (3E elements per row at most) must fit the kernels' 32-bit row/column arithmetic.
bool fits_int32(const KvShape& s) {
  const int64_t limit = int64_t{1} << 31;
  return s.batch * s.tokens * 2 < limit && 3 * s.heads * s.head_dim < limit;
}

// Launches kernel<T, V> with V = 16-byte packs or single elements over `rows` × (`cols_elements` / V).
#define SPVIT_LAUNCH_ROWS(kernel, packs, rows, cols_elements, ...)                                          \
  do {                                                                                                      \
    if (packs) {                                                                                            \
      constexpr int V = vec16<T>();                                                                         \
      const Grid g = row_grid(rows, (cols_elements) / V);                                                   \
      kernel<T, V><<<g.blocks, g.threads, 0, stream>>>(__VA_ARGS__, pack_dims<V>(s));                       \
    } else {                                                                                                \
      const Grid g = row_grid(rows, cols_elements);                                                         \
      kernel<T, 1><<<g.blocks, g.threads, 0, stream>>>(__VA_ARGS__, pack_dims<1>(s));                       \
    }                                                                                                       \
  } while (0)

}  // namespace

template <typename T>
cudaError_t launch_split_qkv(const T* qkv, T* q, T* kv, KvShape s, cudaStream_t stream) {
  if (s.batch * s.tokens * s.heads * s.head_dim == 0) return cudaSuccess;
  if (!fits_int32(s)) return cudaErrorInvalidValue;
  SPVIT_LAUNCH_ROWS(split_qkv_kernel, use_packs<T>(s, qkv, q, kv), s.batch * s.tokens, 3 * s.heads * s.head_dim,
                    qkv, q, kv);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_unpack_kv(const T* gathered, T* k, T* v, KvShape s, cudaStream_t stream) {
  if (s.batch * s.tokens * s.heads * s.head_dim == 0) return cudaSuccess;
  if (!fits_int32(s)) return cudaErrorInvalidValue;
  SPVIT_LAUNCH_ROWS(unpack_kv_kernel, use_packs<T>(s, gathered, k, v), s.tokens * 2 * s.batch, s.heads * s.head_dim,
                    gathered, k, v);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_pack_kv_grad(const T* dk, const T* dv, T* dkv, KvShape s, cudaStream_t stream) {
  if (s.batch * s.tokens * s.heads * s.head_dim == 0) return cudaSuccess;
  if (!fits_int32(s)) return cudaErrorInvalidValue;
  SPVIT_LAUNCH_ROWS(pack_kv_grad_kernel, use_packs<T>(s, dk, dv, dkv), s.tokens * 2 * s.batch, s.heads * s.head_dim,
                    dk, dv, dkv);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_merge_qkv_grad(const T* dq, const T* dkv, T* dqkv, bool accumulate, KvShape s,
                                  cudaStream_t stream) {
  if (s.batch * s.tokens * s.heads * s.head_dim == 0) return cudaSuccess;
  if (!fits_int32(s)) return cudaErrorInvalidValue;
  SPVIT_LAUNCH_ROWS(merge_qkv_grad_kernel, use_packs<T>(s, dq, dkv, dqkv), s.batch * s.tokens,
                    3 * s.heads * s.head_dim, dq, dkv, dqkv, accumulate);
  return cudaGetLastError();
}

#undef SPVIT_LAUNCH_ROWS

#define SPVIT_INSTANTIATE_KV_PACK(T)                                                                           \
  template cudaError_t launch_split_qkv<T>(const T*, T*, T*, KvShape, cudaStream_t);                           \
  template cudaError_t launch_unpack_kv<T>(const T*, T*, T*, KvShape, cudaStream_t);                           \
  template cudaError_t launch_pack_kv_grad<T>(const T*, const T*, T*, KvShape, cudaStream_t);                  \
  template cudaError_t launch_merge_qkv_grad<T>(const T*, const T*, T*, bool, KvShape, cudaStream_t);
SPVIT_INSTANTIATE_KV_PACK(float)
SPVIT_INSTANTIATE_KV_PACK(__half)
SPVIT_INSTANTIATE_KV_PACK(__nv_bfloat16)
#undef SPVIT_INSTANTIATE_KV_PACK

}  // namespace spvit::kernels

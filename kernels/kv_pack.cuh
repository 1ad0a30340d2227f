// Launchers of the fused K‖V communication kernels (kv_pack.cu). Raw pointers and sizes only, so that this header
// compiles with nvcc and with the host compiler alike. T is float, __half or __nv_bfloat16; all tensors are
// contiguous. Each launcher enqueues one kernel on `stream` and returns cudaGetLastError().
//
// Layouts (E = heads · head_dim; "tokens" is L_s for the local buffers and L for the gathered ones):
//   qkv      [B, L_s, 3, E]   the qkv projection's output, rows [q; k; v]
//   q        [B, H, L_s, D]   what attention reads
//   kv       [L_s, 2, B, E]   the all-gather send buffer: token-major, so the gathered buffer is the concatenation
//                             of the ranks' buffers in rank order, for uneven segments too
//   gathered [L, 2, B, E]     the all-gather's output; k, v [B, H, L, D] are its unpacked halves
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace spvit::kernels {

struct KvShape {
  int64_t batch = 0;
  int64_t tokens = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;
};

// Forward, before the all-gather: qkv -> q (split into heads) and kv (the send buffer), in one pass over qkv.
template <typename T>
cudaError_t launch_split_qkv(const T* qkv, T* q, T* kv, KvShape shape, cudaStream_t stream);

// Forward, after the all-gather: gathered -> k, v. `shape.tokens` is L.
template <typename T>
cudaError_t launch_unpack_kv(const T* gathered, T* k, T* v, KvShape shape, cudaStream_t stream);

// Backward, before the reduce-scatter (adjoint of unpack): dk, dv [B, H, L, D] -> dkv [L, 2, B, E]. A null dk or dv
// is a zero gradient.
template <typename T>
cudaError_t launch_pack_kv_grad(const T* dk, const T* dv, T* dkv, KvShape shape, cudaStream_t stream);

// Backward, after the reduce-scatter (adjoint of split): dq [B, H, L_s, D] and this rank's reduced dkv
// [L_s, 2, B, E] -> dqkv [B, L_s, 3, E], written (accumulate = false) or added (accumulate = true). A null dq or dkv
// is a zero gradient.
template <typename T>
cudaError_t launch_merge_qkv_grad(const T* dq, const T* dkv, T* dqkv, bool accumulate, KvShape shape,
                                  cudaStream_t stream);

}  // namespace spvit::kernels

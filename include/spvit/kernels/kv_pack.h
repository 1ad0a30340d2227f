// The fused K‖V communication of the LSS attention (docs/sequence-parallel.md, "One transformer block", step 2): the
// qkv projection's output goes straight into the contiguous all-gather send buffer, and the gathered buffer into the k,
// v that attention reads; backward packs [dK ‖ dV] for the ONE reduce-scatter and merges the reduced result with dq
// into the projection's gradient. CUDA tensors run the kernels of kernels/kv_pack.cu on the current stream; CPU tensors
// run the same operations as LibTorch ops (the reference the CUDA kernels are tested against).
//
// Layouts (E = heads · D): qkv [B, L_s, 3E] (rows [q; k; v]); q [B, H, L_s, D]; the send buffer kv [L_s, 2, B, E] is
// token-major, so that the all-gather (dist::gather_rows) of the ranks' buffers in rank order is [L, 2, B, E] for
// uneven segments too; k, v [B, H, L, D].
#pragma once
#include <torch/torch.h>

#include <utility>

namespace spvit::kernels {

struct QkvSplit {
  torch::Tensor q;   // [B, H, L_s, D]
  torch::Tensor kv;  // [L_s, 2, B, E], contiguous: the all-gather's send buffer
};

// ---- The four operations (no autograd). Tensors must be float32/64, float16 or bfloat16 (float64: CPU only).

// qkv [B, L_s, 3E] -> q (contiguous) and kv, in one pass.
QkvSplit split_qkv(const torch::Tensor& qkv, int64_t heads);
// gathered [L, 2, B, E] -> contiguous k, v [B, H, L, D].
std::pair<torch::Tensor, torch::Tensor> unpack_kv(const torch::Tensor& gathered, int64_t heads);
// The adjoint of unpack_kv: dk, dv [B, H, L, D] -> the reduce-scatter's input [L, 2, B, E]. An undefined dk or dv
// (autograd's "no gradient") counts as zeros; at least one must be defined.
torch::Tensor pack_kv_grad(const torch::Tensor& dk, const torch::Tensor& dv);
// The adjoint of split_qkv: writes (or, with accumulate, adds) dq [B, H, L_s, D] and this rank's reduce-scattered
// dkv [L_s, 2, B, E] into dqkv [B, L_s, 3E] (contiguous). Undefined dq or dkv count as zeros.
void merge_qkv_grad(const torch::Tensor& dq, const torch::Tensor& dkv, torch::Tensor& dqkv, bool accumulate);

// ---- Differentiable versions, as the attention uses them.
enum class KvPath {
  Auto,   // Fused for CUDA tensors, Views otherwise
  Views,  // LibTorch views and one .contiguous() for the send buffer: the CPU path, bit-identical to the code the
          // distributed-exactness tests were written against
  Fused,  // autograd functions around the four operations above (CUDA kernels, or their CPU versions)
};

// q and the send buffer from qkv; backward is merge_qkv_grad. With Views, q is a strided view of qkv.
QkvSplit split_qkv_for_gather(const torch::Tensor& qkv, int64_t heads, KvPath path = KvPath::Auto);
// k, v from the all-gathered buffer; backward is pack_kv_grad. With Views, k and v are strided views of `gathered`.
std::pair<torch::Tensor, torch::Tensor> unpack_gathered_kv(const torch::Tensor& gathered, int64_t heads,
                                                           KvPath path = KvPath::Auto);

}  // namespace spvit::kernels

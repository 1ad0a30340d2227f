// The CUDA side of the torch-facing kernel API: tensor-level wrappers around the launchers, implemented in
// torch_cuda.cpp, which is compiled only when SPVIT_HAVE_CUDA (it needs CUDA LibTorch headers). Callers (the
// always-compiled kernels/*.cpp) have already checked shapes, devices and contiguity and allocated the outputs; these
// functions pick the element type, take the current stream and launch.
#pragma once
#include <torch/torch.h>

#include <utility>
#include <vector>

#include "spvit/kernels/patch_resample.h"

namespace spvit::kernels::cuda {

void split_qkv(const torch::Tensor& qkv, const torch::Tensor& q, const torch::Tensor& kv, int64_t heads);
void unpack_kv(const torch::Tensor& gathered, const torch::Tensor& k, const torch::Tensor& v, int64_t heads);
// dk or dv may be undefined (zeros).
void pack_kv_grad(const torch::Tensor& dk, const torch::Tensor& dv, const torch::Tensor& dkv, int64_t heads);
// dq or dkv may be undefined (zeros).
void merge_qkv_grad(const torch::Tensor& dq, const torch::Tensor& dkv, const torch::Tensor& dqkv, bool accumulate,
                    int64_t heads);

// dst[i] (+)= scale · src[i] for contiguous tensors of one dtype and equal numel, all on one device.
void multi_scaled_copy(const std::vector<torch::Tensor>& src, const std::vector<torch::Tensor>& dst, double scale,
                       bool accumulate);

// leaves: int64 [n, 4] on the pixels' device. tokens: [n, C·P^d], contiguous, zero where no group writes.
// group_tokens: int64 on the device, the token indices of each side group back to back; groups: (side, count) pairs
// in the same order. One launch per group.
void extract_leaves(const torch::Tensor& pixels, const torch::Tensor& leaves, const torch::Tensor& group_tokens,
                    const std::vector<std::pair<int64_t, int64_t>>& groups, const torch::Tensor& tokens,
                    const LeafGeometry& geometry, bool nearest);
// row_groups: int32 [groups, 3] (leaf, first row, rows) on the device (see kernels/patch_resample.cuh).
void paste_leaves(const torch::Tensor& tokens, const torch::Tensor& leaves, const torch::Tensor& row_groups,
                  const torch::Tensor& pixels, const LeafGeometry& geometry);

}  // namespace spvit::kernels::cuda

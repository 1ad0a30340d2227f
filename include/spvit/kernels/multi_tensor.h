// Multi-tensor scaled copies for gradient buckets (docs/sequence-parallel.md, "Double gradient averaging": buckets):
// flatten gradients into a bucket's contiguous storage and unflatten the averaged bucket back into .grad, with an
// optional scale (1/N_d) and accumulation, as ONE CUDA launch per up to 96 tensors (kernels/multi_tensor.cu) instead of
// one copy per tensor. CPU tensors, float64 and non-contiguous tensors use LibTorch ops (copy_, mul, add_), which are
// also the reference.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace spvit::kernels {

// For each i: dst[i] = scale · src[i] (accumulate = false) or dst[i] += scale · src[i]. Pairs have equal numel (shapes
// may differ: values are matched in row-major order); all tensors share one dtype and device. With scale == 1 and no
// accumulation it is an exact copy.
void multi_scaled_copy(const std::vector<torch::Tensor>& src, const std::vector<torch::Tensor>& dst, double scale = 1.0,
                       bool accumulate = false);

// Flatten: flat[offsets[i], offsets[i] + numel_i) (+)= scale · tensors[i]. `flat` is 1-D and contiguous.
void flatten_into(const std::vector<torch::Tensor>& tensors, const torch::Tensor& flat,
                  const std::vector<int64_t>& offsets, double scale = 1.0, bool accumulate = false);

// Unflatten: tensors[i] (+)= scale · flat[offsets[i], offsets[i] + numel_i).
void unflatten_from(const torch::Tensor& flat, const std::vector<int64_t>& offsets,
                    const std::vector<torch::Tensor>& tensors, double scale = 1.0, bool accumulate = false);

}  // namespace spvit::kernels

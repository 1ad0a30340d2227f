// Convolutions for a spatially partitioned decoder (docs/sequence-parallel.md, "Decoder without gathering"): the image
// is split into bands (slabs in 3D) along its first spatial dimension over the sequence group. A k×k conv first
// exchanges k//2 halo rows with its neighbours, so each band's output equals the same rows of the undivided conv.
#pragma once
#include <torch/torch.h>

#include "spvit/dist/communicator.h"

namespace spvit::model {

// k^d convolution (stride 1, 'same' size, k = weight's last size) on x [B, C, rows, ...] with the given weights;
// `comm` = the sequence group (null: the rows of x are the whole image, zero padding on both sides).
torch::Tensor halo_conv(const torch::Tensor& x, const dist::CommPtr& comm, const torch::Tensor& weight,
                        const torch::Tensor& bias);
// Transposed convolution with kernel 2 and stride 2 (weight [in, out, 2, 2(, 2)]).
torch::Tensor up_conv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// halo_conv with its own parameters.
class HaloConvImpl : public torch::nn::Module {
 public:
  HaloConvImpl(int64_t in_channels, int64_t out_channels, int64_t kernel, int spatial_dims);
  torch::Tensor forward(const torch::Tensor& x, const dist::CommPtr& comm);
  const torch::Tensor& weight() const { return weight_; }
  const torch::Tensor& bias() const { return bias_; }

 private:
  torch::Tensor weight_, bias_;
};
TORCH_MODULE(HaloConv);

// Transposed convolution with kernel 2 and stride 2 (doubles every spatial size). Each output row depends on one
// input row, so bands need no halo.
class UpConvImpl : public torch::nn::Module {
 public:
  UpConvImpl(int64_t in_channels, int64_t out_channels, int spatial_dims);
  torch::Tensor forward(const torch::Tensor& x);
  const torch::Tensor& weight() const { return weight_; }
  const torch::Tensor& bias() const { return bias_; }

 private:
  torch::Tensor weight_, bias_;
};
TORCH_MODULE(UpConv);

}  // namespace spvit::model

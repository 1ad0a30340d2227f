#include "spvit/model/halo_conv.h"

#include <cmath>

#include "spvit/core/error.h"
#include "spvit/dist/collectives.h"

namespace spvit::model {
namespace {

// Kaiming-uniform-like initialisation (as torch::nn::Conv does) from the fan-in.
torch::Tensor init_weight(std::vector<int64_t> shape, int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return torch::empty(shape).uniform_(-bound, bound);
}

}  // namespace

HaloConvImpl::HaloConvImpl(int64_t in_channels, int64_t out_channels, int64_t kernel, int spatial_dims) {
  SPVIT_CHECK(kernel % 2 == 1, "halo convolution needs an odd kernel, got ", kernel);
  SPVIT_CHECK(spatial_dims == 2 || spatial_dims == 3, "spatial_dims must be 2 or 3, got ", spatial_dims);
  std::vector<int64_t> shape{out_channels, in_channels};
  int64_t fan_in = in_channels;
  for (int d = 0; d < spatial_dims; ++d) {
    shape.push_back(kernel);
    fan_in *= kernel;
  }
  weight_ = register_parameter("weight", init_weight(shape, fan_in));
  bias_ = register_parameter("bias", init_weight({out_channels}, fan_in));
}

torch::Tensor halo_conv(const torch::Tensor& x, const dist::CommPtr& comm, const torch::Tensor& weight,
                        const torch::Tensor& bias) {
  const int64_t spatial_dims = weight.dim() - 2;
  SPVIT_CHECK(x.dim() == weight.dim(), "halo convolution expects [B, C, spatial...], got ", x.sizes());
  const int64_t halo = weight.size(-1) / 2;
  if (comm == nullptr || comm->size() == 1) {
    // The whole image on one rank: the convolution's own zero padding, not an explicitly padded copy of the
    // (full-resolution, large) input that autograd would keep alive for the backward pass.
    if (spatial_dims == 2) {
      return torch::conv2d(x, weight, bias, at::IntArrayRef{1, 1}, at::IntArrayRef{halo, halo});
    }
    return torch::conv3d(x, weight, bias, at::IntArrayRef{1, 1, 1}, at::IntArrayRef{halo, halo, halo});
  }
  // Rows along the band dimension come from the neighbours (or zeros at the global borders); the other spatial
  // dimensions are whole on every rank and use ordinary zero padding.
  auto padded = dist::halo_exchange(x, comm, 2, halo);
  if (spatial_dims == 2) {
    return torch::conv2d(padded, weight, bias, at::IntArrayRef{1, 1}, at::IntArrayRef{0, halo});
  }
  return torch::conv3d(padded, weight, bias, at::IntArrayRef{1, 1, 1}, at::IntArrayRef{0, halo, halo});
}

torch::Tensor up_conv(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (weight.dim() == 4) return torch::conv_transpose2d(x, weight, bias, at::IntArrayRef{2, 2});
  return torch::conv_transpose3d(x, weight, bias, at::IntArrayRef{2, 2, 2});
}

torch::Tensor HaloConvImpl::forward(const torch::Tensor& x, const dist::CommPtr& comm) {
  return halo_conv(x, comm, weight_, bias_);
}

UpConvImpl::UpConvImpl(int64_t in_channels, int64_t out_channels, int spatial_dims) {
  SPVIT_CHECK(spatial_dims == 2 || spatial_dims == 3, "spatial_dims must be 2 or 3, got ", spatial_dims);
  std::vector<int64_t> shape{in_channels, out_channels};  // transposed-conv weight layout
  int64_t fan_in = out_channels;
  for (int d = 0; d < spatial_dims; ++d) {
    shape.push_back(2);
    fan_in *= 2;
  }
  weight_ = register_parameter("weight", init_weight(shape, fan_in));
  bias_ = register_parameter("bias", init_weight({out_channels}, fan_in));
}

torch::Tensor UpConvImpl::forward(const torch::Tensor& x) { return up_conv(x, weight_, bias_); }

}  // namespace spvit::model

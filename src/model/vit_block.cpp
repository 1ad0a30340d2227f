#include "spvit/model/vit_block.h"

#include <cmath>

namespace spvit::model {

ViTBlockImpl::ViTBlockImpl(const BlockOptions& options) {
  const int64_t dim = options.attention.dim;
  const auto hidden = static_cast<int64_t>(std::lround(options.mlp_ratio * static_cast<double>(dim)));
  norm1_ = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  attn_ = register_module("attn", MultiHeadAttention(options.attention));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  fc1_ = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2_ = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor ViTBlockImpl::forward(const torch::Tensor& x, const SequenceContext& seq) {
  auto y = x + attn_->forward(norm1_->forward(x), seq);
  return y + fc2_->forward(torch::gelu(fc1_->forward(norm2_->forward(y))));
}

}  // namespace spvit::model

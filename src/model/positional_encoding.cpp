#include "spvit/model/positional_encoding.h"

#include "spvit/core/error.h"

namespace spvit::model {

GridPositionalEncodingImpl::GridPositionalEncodingImpl(int64_t max_tokens, int64_t dim) {
  table_ = register_parameter("table", torch::randn({max_tokens, dim}) * 0.02);
}

torch::Tensor GridPositionalEncodingImpl::forward(const torch::Tensor& index) {
  SPVIT_CHECK(index.dim() == 1, "grid positional encoding expects [L_s] token indices, got ", index.sizes());
  if (index.numel() > 0) {
    const int64_t largest = index.max().item<int64_t>();
    SPVIT_CHECK(largest < table_.size(0), "token index ", largest, " exceeds the positional table (",
                table_.size(0), " rows): raise model.max_tokens");
  }
  return table_.index_select(0, index.to(table_.device()));
}

CoordinatePositionalEncodingImpl::CoordinatePositionalEncodingImpl(int64_t coord_features, int64_t dim) {
  fc1_ = register_module("fc1", torch::nn::Linear(coord_features, dim));
  fc2_ = register_module("fc2", torch::nn::Linear(dim, dim));
}

torch::Tensor CoordinatePositionalEncodingImpl::forward(const torch::Tensor& coords) {
  SPVIT_CHECK(coords.dim() == 2 && coords.size(1) == fc1_->options.in_features(),
              "coordinate positional encoding expects [L_s, ", fc1_->options.in_features(), "], got ",
              coords.sizes());
  return fc2_->forward(torch::gelu(fc1_->forward(coords.to(fc1_->weight.dtype()))));
}

}  // namespace spvit::model

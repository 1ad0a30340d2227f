#include "spvit/model/vit_encoder.h"

#include "spvit/core/error.h"
#include "spvit/core/torch_compat.h"
#include "spvit/model/checkpoint.h"

namespace spvit::model {

PositionalEncodingKind parse_positional_encoding(const std::string& name) {
  if (name == "grid") return PositionalEncodingKind::Grid;
  if (name == "coords") return PositionalEncodingKind::Coords;
  if (name == "none") return PositionalEncodingKind::None;
  SPVIT_THROW(ConfigError, "positional encoding '", name, "' is not one of grid, coords, none");
}

EncoderOptions EncoderOptions::from_config(const ModelConfig& m, const DistConfig& d) {
  EncoderOptions o;
  int64_t patch_numel = 1;
  for (int64_t d = 0; d < m.spatial_dims; ++d) patch_numel *= m.patch;
  o.in_features = m.channels * patch_numel;
  o.dim = m.dim;
  o.depth = m.depth;
  o.heads = m.heads;
  o.mlp_ratio = m.mlp_ratio;
  o.pos_encoding = parse_positional_encoding(m.pos_encoding);
  o.max_tokens = m.max_tokens;
  o.coord_features = m.spatial_dims + 1;
  o.attention = parse_attention_strategy(m.attention);
  o.ulysses_size = d.ulysses_size;
  o.hybrid_outer = parse_attention_strategy(d.hybrid_outer);
  o.checkpointing = m.checkpointing;
  o.attention_backend = m.attention_backend;
  return o;
}

ViTEncoderImpl::ViTEncoderImpl(const EncoderOptions& options) : options_(options) {
  SPVIT_CHECK(options.in_features > 0, "encoder: in_features must be positive");
  compat::set_attention_backend(options.attention_backend);
  embed_ = register_module("embed", torch::nn::Linear(options.in_features, options.dim));
  if (options.pos_encoding == PositionalEncodingKind::Grid) {
    grid_pos_ = register_module("pos", GridPositionalEncoding(options.max_tokens, options.dim));
  } else if (options.pos_encoding == PositionalEncodingKind::Coords) {
    coord_pos_ = register_module("pos", CoordinatePositionalEncoding(options.coord_features, options.dim));
  }
  BlockOptions block;
  block.attention = {options.dim, options.heads, options.attention, options.allow_fused_attention,
                     options.ulysses_size, options.hybrid_outer};
  block.mlp_ratio = options.mlp_ratio;
  for (int64_t i = 0; i < options.depth; ++i) {
    blocks_.push_back(register_module("block" + std::to_string(i), ViTBlock(block)));
  }
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.dim})));
}

torch::Tensor ViTEncoderImpl::run_block(size_t i, const torch::Tensor& x, const SequenceContext& seq) {
  auto block = blocks_[i];
  if (!options_.checkpointing || !torch::GradMode::is_enabled()) return block->forward(x, seq);
  // The closure owns copies of the block handle and the sequence context: backward may run after this returns.
  SequenceContext seq_copy = seq;
  return checkpoint([block, seq_copy](const torch::Tensor& in) mutable { return block->forward(in, seq_copy); }, x,
                    block->parameters());
}

std::vector<torch::Tensor> ViTEncoderImpl::forward_features(const torch::Tensor& tokens, const TokenMetadata& meta,
                                                            const SequenceContext& seq,
                                                            const std::vector<int64_t>& taps) {
  SPVIT_CHECK(tokens.dim() == 3 && tokens.size(2) == options_.in_features, "encoder input must be [B, L_s, ",
              options_.in_features, "], got ", tokens.sizes());
  auto x = embed_->forward(tokens);
  if (grid_pos_) {
    SPVIT_CHECK(meta.index.defined() && meta.index.numel() == tokens.size(1),
                "grid positional encoding needs one global index per token");
    x = x + grid_pos_->forward(meta.index).unsqueeze(0);
  } else if (coord_pos_) {
    SPVIT_CHECK(meta.coords.defined() && meta.coords.size(0) == tokens.size(1),
                "coordinate positional encoding needs one coordinate row per token");
    x = x + coord_pos_->forward(meta.coords).unsqueeze(0);
  }
  std::vector<torch::Tensor> features;
  size_t next_tap = 0;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    x = run_block(i, x, seq);
    while (next_tap < taps.size() && taps[next_tap] == static_cast<int64_t>(i)) {
      features.push_back(x);
      ++next_tap;
    }
  }
  SPVIT_CHECK(next_tap == taps.size(), "encoder taps must be non-decreasing block indices below depth ", blocks_.size());
  features.push_back(norm_->forward(x));
  return features;
}

torch::Tensor ViTEncoderImpl::forward(const torch::Tensor& tokens, const TokenMetadata& meta,
                                      const SequenceContext& seq) {
  return forward_features(tokens, meta, seq, {}).back();
}

}  // namespace spvit::model

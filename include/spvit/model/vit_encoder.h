// The ViT encoder: patch embedding -> + positional encoding -> pre-LN blocks -> final LayerNorm.
// Input is this rank's segment of the token sequence: tokens [B, L_s, C·P²] with per-token metadata.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/model/vit_block.h"
#include "spvit/model/positional_encoding.h"

namespace spvit::model {

enum class PositionalEncodingKind { Grid, Coords, None };
PositionalEncodingKind parse_positional_encoding(const std::string& name);  // "grid" | "coords" | "none"

struct EncoderOptions {
  int64_t in_features = 0;  // C·P² (2D) or C·P³ (3D)
  int64_t dim = 192;
  int64_t depth = 4;
  int64_t heads = 3;
  double mlp_ratio = 4.0;
  PositionalEncodingKind pos_encoding = PositionalEncodingKind::Grid;
  int64_t max_tokens = 65536;     // grid table rows
  int64_t coord_features = 3;     // coordinate-MLP inputs: spatial_dims centre coordinates + log2 side
  AttentionStrategy attention = AttentionStrategy::LssKv;
  int64_t ulysses_size = 0;                                   // hybrid: Ulysses group size (dist.ulysses_size)
  AttentionStrategy hybrid_outer = AttentionStrategy::LssKv;  // hybrid: strategy across groups (dist.hybrid_outer)
  bool checkpointing = false;
  bool allow_fused_attention = true;
  std::string attention_backend = "auto";  // CUDA fused-attention kernel (compat::set_attention_backend)

  // `dist` gives the hybrid strategy's shape (dist.ulysses_size, dist.hybrid_outer); the defaults leave it unset.
  static EncoderOptions from_config(const ModelConfig& model, const DistConfig& dist = {});
};

// Per-token metadata for this rank's tokens (only what the chosen positional encoding needs must be defined).
struct TokenMetadata {
  torch::Tensor index;   // [L_s] int64 global token index (grid encoding)
  torch::Tensor coords;  // [L_s, coord_features] (coordinate encoding)
};

class ViTEncoderImpl : public torch::nn::Module {
 public:
  explicit ViTEncoderImpl(const EncoderOptions& options);

  // tokens: [B, L_s, in_features] -> [B, L_s, E].
  torch::Tensor forward(const torch::Tensor& tokens, const TokenMetadata& meta, const SequenceContext& seq);
  // Also returns the outputs of the blocks listed in `taps` (0-based, non-decreasing), e.g. skip features for a UNETR decoder:
  // result = {block taps[0] output, ..., final normed output}.
  std::vector<torch::Tensor> forward_features(const torch::Tensor& tokens, const TokenMetadata& meta,
                                              const SequenceContext& seq, const std::vector<int64_t>& taps);

  const EncoderOptions& options() const { return options_; }
  void set_checkpointing(bool on) { options_.checkpointing = on; }

 private:
  torch::Tensor run_block(size_t i, const torch::Tensor& x, const SequenceContext& seq);

  EncoderOptions options_;
  torch::nn::Linear embed_{nullptr};
  GridPositionalEncoding grid_pos_{nullptr};
  CoordinatePositionalEncoding coord_pos_{nullptr};
  std::vector<ViTBlock> blocks_;
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(ViTEncoder);

}  // namespace spvit::model

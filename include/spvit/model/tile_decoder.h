// The tile decoder (see decoder.h): one linear head maps each token's features to a P×P (P×P×P) logit tile, which
// the patcher pastes onto the token's leaf — any layout, adaptive included.
#pragma once
#include <torch/torch.h>

#include "spvit/model/decoder.h"

namespace spvit::model {

class TileDecoderImpl : public DecoderImpl {
 public:
  explicit TileDecoderImpl(const DecoderOptions& options);
  torch::Tensor forward(const DecoderInput& input) override;
  // Forward FLOPs per token: one E -> K·P^d linear layer.
  static double forward_flops_per_token(const DecoderOptions& options);

 private:
  DecoderOptions options_;
  torch::nn::Linear tile_head_{nullptr};
};

}  // namespace spvit::model

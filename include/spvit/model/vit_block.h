// One pre-LN transformer block: x += Attn(LN1(x)); x += MLP(LN2(x)). Everything but attention is per token.
#pragma once
#include <torch/torch.h>

#include "spvit/model/attention.h"

namespace spvit::model {

struct BlockOptions {
  AttentionOptions attention;
  double mlp_ratio = 4.0;
};

class ViTBlockImpl : public torch::nn::Module {
 public:
  explicit ViTBlockImpl(const BlockOptions& options);
  // x: [B, L_s, E] -> [B, L_s, E].
  torch::Tensor forward(const torch::Tensor& x, const SequenceContext& seq);

 private:
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  MultiHeadAttention attn_{nullptr};
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(ViTBlock);

}  // namespace spvit::model

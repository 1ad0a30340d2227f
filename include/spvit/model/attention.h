// Multi-head self-attention with a pluggable sequence-parallel strategy (docs/sequence-parallel.md, "One transformer
// block", steps 1-4).
//
//   local  : the whole sequence is on this rank (reference and single-GPU path).
//   lss-kv : q, k, v for local tokens; ONE all-gather of the packed [k ‖ v] buffer; local queries attend to all keys.
//            Backward: ONE reduce-scatter of [dK ‖ dV]. Exact: every rank computes complete softmax rows.
//   lss-x  : ONE all-gather of the normalised input h (half the bytes); every rank projects the full K, V itself
//            (redundant 4·L·E² FLOPs). Backward: ONE reduce-scatter of dh.
#pragma once
#include <torch/torch.h>

#include <string>

#include "spvit/core/registry.h"
#include "spvit/model/sequence_context.h"

namespace spvit::model {

enum class AttentionStrategy { Local, LssKv, LssX };

// The attention-strategy registry (core/registry.h): the one list of strategy names, selected by model.attention.
struct AttentionEntry {
  std::string name;
  std::string summary;
  AttentionStrategy strategy;
  bool shards_sequence = true;  // false: needs the whole sequence on one rank (grid.seq = 1)
};
const Registry<AttentionEntry>& attention_strategies();

AttentionStrategy parse_attention_strategy(const std::string& name);  // ConfigError for an unknown name
std::string to_string(AttentionStrategy strategy);

struct AttentionOptions {
  int64_t dim = 0;
  int64_t heads = 1;
  AttentionStrategy strategy = AttentionStrategy::LssKv;
  bool allow_fused_kernel = true;  // use LibTorch's fused SDPA when it has one
};

class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiHeadAttentionImpl(const AttentionOptions& options);
  // h: [B, L_s, E] (this rank's tokens, already layer-normed). Returns [B, L_s, E].
  torch::Tensor forward(const torch::Tensor& h, const SequenceContext& seq);

  const AttentionOptions& options() const { return options_; }

 private:
  torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const SequenceContext& seq);
  torch::Tensor forward_local(const torch::Tensor& h, const SequenceContext& seq);
  torch::Tensor forward_kv_gather(const torch::Tensor& h, const SequenceContext& seq);
  torch::Tensor forward_x_gather(const torch::Tensor& h, const SequenceContext& seq);

  AttentionOptions options_;
  torch::nn::Linear qkv_{nullptr};  // E -> 3E, rows ordered [q; k; v]
  torch::nn::Linear proj_{nullptr}; // E -> E
};
TORCH_MODULE(MultiHeadAttention);

}  // namespace spvit::model

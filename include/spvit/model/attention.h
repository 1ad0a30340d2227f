// Multi-head self-attention with a pluggable sequence-parallel strategy (docs/sequence-parallel.md, "One transformer
// block" and "Strategies"). Each strategy is one file of src/model/attention/ and one entry of the registry below:
//
//   local   : the whole sequence is on this rank (reference and single-GPU path).
//   lss-kv  : ONE all-gather of the packed [k ‖ v] buffer; local queries attend to all keys. Backward: ONE
//             reduce-scatter of [dK ‖ dV].
//   lss-x   : ONE all-gather of the normalised input h (half the bytes); every rank projects the full K, V itself.
//   ulysses : ONE all-to-all of q, k, v from token-sharded to head-sharded, full-length attention on this rank's heads,
//             ONE all-to-all back (DeepSpeed-Ulysses); uneven head groups when N_s does not divide the heads.
//   ring    : K/V blocks rotate over N_s − 1 grouped send/receives, the next one posted before the current block's
//             attention; partial results merged by the log-sum-exp rule; backward is the reverse ring.
//   hybrid  : ulysses inside groups of dist.ulysses_size ranks × lss-kv or ring (dist.hybrid_outer) across groups.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "spvit/core/registry.h"
#include "spvit/model/sequence_context.h"

namespace spvit::model {

enum class AttentionStrategy { Local, LssKv, LssX, Ulysses, Ring, Hybrid };

struct AttentionOptions;

// What a strategy needs from its layer: the [q; k; v] projection and the options (heads, kernels, hybrid shape).
struct AttentionLayer {
  torch::nn::LinearImpl& qkv;
  const AttentionOptions& options;
};

// A strategy: h [B, L_s, E] (this rank's normalised tokens) -> the attention output of this rank's queries,
// [B, L_s, E], before the output projection.
using AttentionForward = torch::Tensor (*)(const torch::Tensor& h, const AttentionLayer& layer,
                                           const SequenceContext& seq);

// The attention-strategy registry (core/registry.h): the one list of strategy names, selected by model.attention.
struct AttentionEntry {
  std::string name;
  std::string summary;
  AttentionStrategy strategy;
  bool shards_sequence = true;  // false: needs the whole sequence on one rank (grid.seq = 1)
  AttentionForward forward = nullptr;
  bool hybrid_outer = false;    // may be dist.hybrid_outer
};
const Registry<AttentionEntry>& attention_strategies();

AttentionStrategy parse_attention_strategy(const std::string& name);  // ConfigError for an unknown name
std::string to_string(AttentionStrategy strategy);

struct AttentionOptions {
  int64_t dim = 0;
  int64_t heads = 1;
  AttentionStrategy strategy = AttentionStrategy::LssKv;
  bool allow_fused_kernel = true;  // use LibTorch's fused SDPA when it has one
  // hybrid only: Ulysses group size (dist.ulysses_size, divides N_s) and the strategy across groups.
  int64_t ulysses_size = 0;
  AttentionStrategy hybrid_outer = AttentionStrategy::LssKv;
};

class MultiHeadAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiHeadAttentionImpl(const AttentionOptions& options);
  // h: [B, L_s, E] (this rank's tokens, already layer-normed). Returns [B, L_s, E].
  torch::Tensor forward(const torch::Tensor& h, const SequenceContext& seq);

  const AttentionOptions& options() const { return options_; }

 private:
  AttentionOptions options_;
  torch::nn::Linear qkv_{nullptr};  // E -> 3E, rows ordered [q; k; v]
  torch::nn::Linear proj_{nullptr}; // E -> E
};
TORCH_MODULE(MultiHeadAttention);

// Test hook: while set, the ring strategy's forward appends its events in order — "post t" (the transfer of the block
// for step t is posted), "attend t" (step t's block attention starts), "wait t" (the step-t block has arrived) — so a
// test can prove that each transfer is posted before the previous block's attention. nullptr turns it off.
void set_ring_event_log(std::vector<std::string>* log);

}  // namespace spvit::model

#include "spvit/model/attention.h"

#include "attention/strategies.h"
#include "spvit/core/error.h"

namespace spvit::model {

const Registry<AttentionEntry>& attention_strategies() {
  using namespace attention;
  static const Registry<AttentionEntry> registry(
      "attention strategy", "model.attention",
      {{"local", "the whole sequence on one rank (reference and single-GPU path)", AttentionStrategy::Local, false,
        forward_local, false},
       {"lss-kv", "one all-gather of packed [k || v] forward, one reduce-scatter of [dK || dV] backward",
        AttentionStrategy::LssKv, true, forward_lss_kv, true},
       {"lss-x", "one all-gather of the normalised input (half the bytes); every rank projects the full K, V",
        AttentionStrategy::LssX, true, forward_lss_x, false},
       {"ulysses", "all-to-all q, k, v to head shards, full-length attention on the local heads, all-to-all back",
        AttentionStrategy::Ulysses, true, forward_ulysses, false},
       {"ring", "K/V blocks rotate around the ring (next send posted before the current block), log-sum-exp merge",
        AttentionStrategy::Ring, true, forward_ring, true},
       {"hybrid", "ulysses inside groups of dist.ulysses_size ranks x lss-kv or ring across them (dist.hybrid_outer)",
        AttentionStrategy::Hybrid, true, forward_hybrid, false}});
  return registry;
}

AttentionStrategy parse_attention_strategy(const std::string& name) { return attention_strategies().at(name).strategy; }

std::string to_string(AttentionStrategy strategy) {
  for (const auto& e : attention_strategies().entries()) {
    if (e.strategy == strategy) return e.name;
  }
  return "?";
}

namespace {
const AttentionEntry& entry_of(AttentionStrategy strategy) {
  for (const auto& e : attention_strategies().entries()) {
    if (e.strategy == strategy) return e;
  }
  SPVIT_THROW(Error, "attention strategy ", static_cast<int>(strategy), " is not registered");
}
}  // namespace

MultiHeadAttentionImpl::MultiHeadAttentionImpl(const AttentionOptions& options) : options_(options) {
  SPVIT_CHECK(options.dim > 0 && options.heads > 0 && options.dim % options.heads == 0,
              "attention: dim ", options.dim, " must be a positive multiple of heads ", options.heads);
  SPVIT_CHECK(entry_of(options.hybrid_outer).hybrid_outer, "attention: '", to_string(options.hybrid_outer),
              "' cannot be the strategy across hybrid groups (lss-kv or ring)");
  qkv_ = register_module("qkv", torch::nn::Linear(options.dim, 3 * options.dim));
  proj_ = register_module("proj", torch::nn::Linear(options.dim, options.dim));
}

torch::Tensor MultiHeadAttentionImpl::forward(const torch::Tensor& h, const SequenceContext& seq) {
  SPVIT_CHECK(h.dim() == 3 && h.size(2) == options_.dim, "attention input must be [B, L_s, ", options_.dim,
              "], got ", h.sizes());
  SPVIT_CHECK(h.size(1) == seq.shard.local_length(), "attention: this rank holds ", h.size(1),
              " tokens but the sequence split gives it ", seq.shard.local_length());
  const AttentionLayer layer{*qkv_, options_};
  if (!seq.sharded()) return proj_->forward(attention::forward_local(h, layer, seq));
  const auto& entry = entry_of(options_.strategy);
  SPVIT_CHECK(entry.shards_sequence, "attention strategy '", entry.name, "' cannot run on a sharded sequence");
  return proj_->forward(entry.forward(h, layer, seq));
}

}  // namespace spvit::model

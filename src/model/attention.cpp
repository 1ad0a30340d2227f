#include "spvit/model/attention.h"

#include "spvit/core/error.h"
#include "spvit/core/torch_compat.h"
#include "spvit/dist/collectives.h"
#include "spvit/kernels/kv_pack.h"

namespace spvit::model {

const Registry<AttentionEntry>& attention_strategies() {
  static const Registry<AttentionEntry> registry(
      "attention strategy", "model.attention",
      {{"local", "the whole sequence on one rank (reference and single-GPU path)", AttentionStrategy::Local, false},
       {"lss-kv", "one all-gather of packed [k || v] forward, one reduce-scatter of [dK || dV] backward",
        AttentionStrategy::LssKv, true},
       {"lss-x", "one all-gather of the normalised input (half the bytes); every rank projects the full K, V",
        AttentionStrategy::LssX, true}});
  return registry;
}

AttentionStrategy parse_attention_strategy(const std::string& name) { return attention_strategies().at(name).strategy; }

std::string to_string(AttentionStrategy strategy) {
  for (const auto& e : attention_strategies().entries()) {
    if (e.strategy == strategy) return e.name;
  }
  return "?";
}

MultiHeadAttentionImpl::MultiHeadAttentionImpl(const AttentionOptions& options) : options_(options) {
  SPVIT_CHECK(options.dim > 0 && options.heads > 0 && options.dim % options.heads == 0,
              "attention: dim ", options.dim, " must be a positive multiple of heads ", options.heads);
  qkv_ = register_module("qkv", torch::nn::Linear(options.dim, 3 * options.dim));
  proj_ = register_module("proj", torch::nn::Linear(options.dim, options.dim));
}

torch::Tensor MultiHeadAttentionImpl::forward(const torch::Tensor& h, const SequenceContext& seq) {
  SPVIT_CHECK(h.dim() == 3 && h.size(2) == options_.dim, "attention input must be [B, L_s, ", options_.dim,
              "], got ", h.sizes());
  SPVIT_CHECK(h.size(1) == seq.shard.local_length(), "attention: this rank holds ", h.size(1),
              " tokens but the sequence split gives it ", seq.shard.local_length());
  if (!seq.sharded() || options_.strategy == AttentionStrategy::Local) {
    SPVIT_CHECK(!seq.sharded(), "attention strategy 'local' cannot run on a sharded sequence");
    return forward_local(h, seq);
  }
  return options_.strategy == AttentionStrategy::LssKv ? forward_kv_gather(h, seq) : forward_x_gather(h, seq);
}

// q: the local queries, [B, Lq, E] or already split into heads [B, H, Lq, Dh]; k, v: [B, H, L, Dh] (views or
// contiguous).
torch::Tensor MultiHeadAttentionImpl::attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                             const SequenceContext& seq) {
  const int64_t H = options_.heads, Dh = options_.dim / options_.heads;
  const int64_t B = q.size(0), Lq = q.dim() == 4 ? q.size(2) : q.size(1);
  auto qh = q.dim() == 4 ? q : q.view({B, Lq, H, Dh}).transpose(1, 2);
  torch::Tensor mask;
  if (seq.key_valid.defined()) mask = seq.key_valid.to(q.device()).view({1, 1, 1, -1});
  auto o = compat::scaled_dot_product_attention(qh, k, v, mask, options_.allow_fused_kernel);  // [B, H, Lq, Dh]
  return proj_->forward(o.transpose(1, 2).reshape({B, Lq, options_.dim}));
}

torch::Tensor MultiHeadAttentionImpl::forward_local(const torch::Tensor& h, const SequenceContext& seq) {
  const int64_t B = h.size(0), L = h.size(1), E = options_.dim, H = options_.heads, Dh = E / H;
  auto qkv = qkv_->forward(h).view({B, L, 3, H, Dh});
  auto k = qkv.select(2, 1).transpose(1, 2);
  auto v = qkv.select(2, 2).transpose(1, 2);
  return attend(qkv.select(2, 0).reshape({B, L, E}), k, v, seq);
}

torch::Tensor MultiHeadAttentionImpl::forward_kv_gather(const torch::Tensor& h, const SequenceContext& seq) {
  // k_s ‖ v_s packed token-major into one contiguous [L_s, 2, B, E] send buffer, so that the gathered [L, 2, B, E]
  // buffer holds K and V for any segment sizes. On CPU q, K and V are views (one copy: the send buffer); on CUDA one
  // kernel splits qkv into q and the send buffer and one unpacks K and V for attention, and backward packs
  // [dK ‖ dV] for the reduce-scatter and merges dq with the reduced dK, dV in one kernel each (kernels/kv_pack).
  auto split = kernels::split_qkv_for_gather(qkv_->forward(h), options_.heads);
  auto gathered = dist::gather_rows(split.kv, seq.comm, seq.shard.counts);
  auto [k, v] = kernels::unpack_gathered_kv(gathered, options_.heads);
  return attend(split.q, k, v, seq);
}

torch::Tensor MultiHeadAttentionImpl::forward_x_gather(const torch::Tensor& h, const SequenceContext& seq) {
  const int64_t B = h.size(0), E = options_.dim, H = options_.heads, Dh = E / H;
  const int64_t L = seq.shard.length;
  auto h_full = dist::gather_rows(h.transpose(0, 1).contiguous(), seq.comm, seq.shard.counts).transpose(0, 1);
  const auto& w = qkv_->weight;
  const auto& b = qkv_->bias;
  auto q = torch::nn::functional::linear(h, w.narrow(0, 0, E), b.narrow(0, 0, E));
  auto kv = torch::nn::functional::linear(h_full, w.narrow(0, E, 2 * E), b.narrow(0, E, 2 * E)).view({B, L, 2, H, Dh});
  auto k = kv.select(2, 0).transpose(1, 2);
  auto v = kv.select(2, 1).transpose(1, 2);
  return attend(q, k, v, seq);
}

}  // namespace spvit::model

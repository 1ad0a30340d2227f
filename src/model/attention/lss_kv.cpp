// Strategy `lss-kv` (LSS): local q, k, v; ONE all-gather of the packed [k ‖ v] buffer; this rank's queries attend to
// all L keys, so every softmax row is complete and exact. Backward: ONE reduce-scatter of [dK ‖ dV].
//
// k_s ‖ v_s are packed token-major into one contiguous [L_s, 2, B, E] send buffer, so that the gathered [L, 2, B, E]
// buffer holds K and V for any segment sizes. On CPU q, K and V are views (one copy: the send buffer); on CUDA one
// kernel splits qkv into q and the send buffer and one unpacks K and V for attention, and backward packs [dK ‖ dV]
// for the reduce-scatter and merges dq with the reduced dK, dV in one kernel each (kernels/kv_pack).
#include "strategies.h"

#include "spvit/dist/collectives.h"
#include "spvit/kernels/kv_pack.h"

namespace spvit::model::attention {

torch::Tensor forward_lss_kv(const torch::Tensor& h, const AttentionLayer& layer, const SequenceContext& seq) {
  const int64_t heads = layer.options.heads;
  auto split = kernels::split_qkv_for_gather(layer.qkv.forward(h), heads);
  auto gathered = dist::gather_rows(split.kv, seq.comm, seq.shard.counts);
  auto [k, v] = kernels::unpack_gathered_kv(gathered, heads);
  return merge_heads(attend(Heads{split.q, k, v}, key_mask(seq, 0, seq.shard.length, h.device()), layer));
}

}  // namespace spvit::model::attention

// Strategy `lss-x`: ONE all-gather of the normalised input h ([L_s, B, E], half the bytes of K ‖ V); every rank
// projects the full K, V itself (redundant 4·L·E² FLOPs per layer). Backward: ONE reduce-scatter of dh.
#include "strategies.h"

#include "spvit/dist/collectives.h"

namespace spvit::model::attention {

torch::Tensor forward_lss_x(const torch::Tensor& h, const AttentionLayer& layer, const SequenceContext& seq) {
  const int64_t B = h.size(0), E = layer.options.dim, H = layer.options.heads, D = E / H;
  const int64_t L = seq.shard.length;
  auto h_full = dist::gather_rows(h.transpose(0, 1).contiguous(), seq.comm, seq.shard.counts).transpose(0, 1);
  const auto& w = layer.qkv.weight;
  const auto& b = layer.qkv.bias;
  auto q = torch::nn::functional::linear(h, w.narrow(0, 0, E), b.narrow(0, 0, E));
  auto kv = torch::nn::functional::linear(h_full, w.narrow(0, E, 2 * E), b.narrow(0, E, 2 * E)).view({B, L, 2, H, D});
  Heads heads{q.view({B, h.size(1), H, D}).transpose(1, 2), kv.select(2, 0).transpose(1, 2),
              kv.select(2, 1).transpose(1, 2)};
  return merge_heads(attend(heads, key_mask(seq, 0, L, h.device()), layer));
}

}  // namespace spvit::model::attention

// Strategy `hybrid` (Ulysses × an outer strategy, as ORNL's 1M-token ViTs on Frontier): the N_s sequence ranks form
// G = N_s / U groups of U = dist.ulysses_size consecutive ranks (meant to be one node). Inside a group, Ulysses'
// all-to-all gives each rank the group's contiguous token chunk for its share of the heads; the ranks with the same
// position in every group hold the same heads, and across them the outer strategy (dist.hybrid_outer: lss-kv gathers
// the other chunks' K ‖ V, ring rotates them) completes the full-length attention; the second all-to-all returns
// this rank's tokens. Communication: the all-to-alls stay inside a group; only the outer step crosses groups, with
// 1/U of the heads.
#include "spvit/core/error.h"
#include "strategies.h"

namespace spvit::model::attention {

torch::Tensor forward_hybrid(const torch::Tensor& h, const AttentionLayer& layer, const SequenceContext& seq) {
  const int n = seq.comm->size(), s = seq.comm->rank();
  const int64_t U = layer.options.ulysses_size;
  SPVIT_CHECK(U >= 1 && n % U == 0, "attention strategy 'hybrid': dist.ulysses_size = ", U,
              " must divide the sequence group's ", n, " ranks");
  const int u = static_cast<int>(U), group = s / u, position = s % u;
  const std::string tag = std::to_string(u);
  // Created once per sequence communicator (collective on first use), then reused.
  const CommPtr& inner = seq.comm->subgroup("ulysses" + tag, group, s);
  const CommPtr& outer = seq.comm->subgroup("across" + tag, position, s);

  TokenSplit chunk;  // the tokens of this group's U ranks
  chunk.counts.assign(seq.shard.counts.begin() + group * u, seq.shard.counts.begin() + (group + 1) * u);
  chunk.offset = seq.shard.offset_of(group * u);
  TokenSplit chunks;  // the G groups' chunks, in group order (= outer rank order)
  for (int g = 0; g < n / u; ++g) {
    int64_t tokens = 0;
    for (int r = g * u; r < (g + 1) * u; ++r) tokens += seq.shard.counts[static_cast<size_t>(r)];
    chunks.counts.push_back(tokens);
  }

  const auto groups = head_groups(layer.options.heads, u);
  auto local = project_heads(h, layer);
  auto heads = u > 1 ? tokens_to_heads(local, inner, chunk, groups) : local;
  torch::Tensor o;
  if (heads.q.size(1) == 0) {
    o = heads.q * 0;  // no heads on this rank (H < U): nothing to attend
  } else if (layer.options.hybrid_outer == AttentionStrategy::Ring) {
    o = ring_attend(heads, outer, chunks, seq, layer);
  } else {
    o = gather_kv_and_attend(heads, outer, chunks, seq, layer);
  }
  return merge_heads(u > 1 ? heads_to_tokens(o, inner, chunk, groups) : o);
}

}  // namespace spvit::model::attention

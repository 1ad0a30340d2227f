// Strategy `ulysses` (DeepSpeed-Ulysses): ONE all-to-all turns this rank's q, k, v (its L_s tokens, all H heads) into
// the group's whole sequence for this rank's heads; attention runs at full length on those heads (the key mask of the
// whole sequence applies unchanged); ONE all-to-all turns the output back into this rank's tokens, all heads.
// Backward: the two all-to-alls' adjoints (all-to-alls again). Per rank and layer it sends 3·B·L_s·E·(U−1)/U elements
// forward plus B·L_s·E·(U−1)/U back (≈ 4·B·L·E/N_s), whatever L is.
//
// Heads that U does not divide are split unevenly (the first H mod U ranks get one more head, possibly some none):
// exact, at the cost of an idle share on the ranks with fewer heads (docs/sequence-parallel.md). Tokens are never
// padded or truncated: the all-to-all blocks carry each rank's own count.
#include "strategies.h"

#include "spvit/core/even_split.h"
#include "spvit/dist/collectives.h"

namespace spvit::model::attention {
namespace {

// Flattens one block per rank and concatenates them into the all-to-all's 1-D send buffer.
torch::Tensor concat_blocks(const std::vector<torch::Tensor>& blocks, std::vector<int64_t>& numels) {
  std::vector<torch::Tensor> flat;
  numels.clear();
  for (const auto& b : blocks) {
    flat.push_back(b.contiguous().view({-1}));
    numels.push_back(b.numel());
  }
  return torch::cat(flat);
}

}  // namespace

int64_t HeadGroups::offset_of(int rank) const {
  int64_t at = 0;
  for (int q = 0; q < rank; ++q) at += counts[static_cast<size_t>(q)];
  return at;
}

HeadGroups head_groups(int64_t heads, int ranks) { return {even_split(heads, ranks)}; }

Heads tokens_to_heads(const Heads& local, const CommPtr& comm, const TokenSplit& split, const HeadGroups& groups) {
  const int U = comm->size(), me = comm->rank();
  const int64_t B = local.q.size(0), D = local.q.size(3), mine = groups.counts[static_cast<size_t>(me)];
  // [3, B, H, L_me, D] -> token-major [L_me, 3, B, H, D]: the block for rank q is its heads, and the blocks arriving
  // from the group's ranks in rank order concatenate along tokens.
  auto qkv = torch::stack({local.q, local.k, local.v}, 0).permute({3, 0, 1, 2, 4});
  std::vector<torch::Tensor> blocks;
  for (int q = 0; q < U; ++q) blocks.push_back(qkv.narrow(3, groups.offset_of(q), groups.counts[static_cast<size_t>(q)]));
  std::vector<int64_t> send;
  auto buffer = concat_blocks(blocks, send);
  std::vector<int64_t> receive;
  for (int q = 0; q < U; ++q) receive.push_back(split.counts[static_cast<size_t>(q)] * 3 * B * mine * D);
  auto got = dist::all_to_all_rows(buffer, comm, send, receive).view({split.total(), 3, B, mine, D});
  auto heads = got.permute({1, 2, 3, 0, 4});  // [3, B, h_me, L_group, D]
  return {heads[0], heads[1], heads[2]};
}

torch::Tensor heads_to_tokens(const torch::Tensor& o, const CommPtr& comm, const TokenSplit& split,
                              const HeadGroups& groups) {
  const int U = comm->size(), me = comm->rank();
  const int64_t B = o.size(0), D = o.size(3), L_me = split.counts[static_cast<size_t>(me)];
  auto token_major = o.permute({2, 0, 1, 3});  // [L_group, B, h_me, D]: the block for rank q is its tokens
  std::vector<torch::Tensor> blocks;
  for (int q = 0; q < U; ++q) {
    blocks.push_back(token_major.narrow(0, split.offset_of(q) - split.offset, split.counts[static_cast<size_t>(q)]));
  }
  std::vector<int64_t> send;
  auto buffer = concat_blocks(blocks, send);
  std::vector<int64_t> receive;
  for (int q = 0; q < U; ++q) receive.push_back(L_me * B * groups.counts[static_cast<size_t>(q)] * D);
  auto got = dist::all_to_all_rows(buffer, comm, send, receive);
  std::vector<torch::Tensor> by_heads;  // rank q's block: [L_me, B, h_q, D]
  int64_t at = 0;
  for (int q = 0; q < U; ++q) {
    const int64_t n = receive[static_cast<size_t>(q)];
    by_heads.push_back(got.narrow(0, at, n).view({L_me, B, groups.counts[static_cast<size_t>(q)], D}));
    at += n;
  }
  return torch::cat(by_heads, 2).permute({1, 2, 0, 3});  // [B, H, L_me, D]
}

torch::Tensor forward_ulysses(const torch::Tensor& h, const AttentionLayer& layer, const SequenceContext& seq) {
  const auto groups = head_groups(layer.options.heads, seq.comm->size());
  const TokenSplit split{seq.shard.counts, 0};
  auto heads = tokens_to_heads(project_heads(h, layer), seq.comm, split, groups);
  torch::Tensor o;
  if (heads.q.size(1) > 0) {
    o = attend(heads, key_mask(seq, 0, seq.shard.length, h.device()), layer);
  } else {
    o = heads.q * 0;  // this rank has no heads (H < U): nothing to attend, an empty block keeps the graph connected
  }
  return merge_heads(heads_to_tokens(o, seq.comm, split, groups));
}

}  // namespace spvit::model::attention

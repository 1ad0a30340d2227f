// Private to src/model: the attention strategies (one file each) and the building blocks they share
// (docs/sequence-parallel.md, "Strategies"). The registry in attention.cpp lists them.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "spvit/dist/communicator.h"
#include "spvit/model/attention.h"

namespace spvit::model::attention {

using dist::CommPtr;

// ---- the strategies (AttentionForward)
torch::Tensor forward_local(const torch::Tensor& h, const AttentionLayer& layer, const SequenceContext& seq);
torch::Tensor forward_lss_kv(const torch::Tensor& h, const AttentionLayer& layer, const SequenceContext& seq);
torch::Tensor forward_lss_x(const torch::Tensor& h, const AttentionLayer& layer, const SequenceContext& seq);
torch::Tensor forward_ulysses(const torch::Tensor& h, const AttentionLayer& layer, const SequenceContext& seq);
torch::Tensor forward_ring(const torch::Tensor& h, const AttentionLayer& layer, const SequenceContext& seq);
torch::Tensor forward_hybrid(const torch::Tensor& h, const AttentionLayer& layer, const SequenceContext& seq);

// ---- shared pieces (attention_math.cpp)
struct Heads {
  torch::Tensor q, k, v;  // [B, H, L, D] each
};
// h [B, L, E] -> q, k, v [B, H, L, D] (views of one projection).
Heads project_heads(const torch::Tensor& h, const AttentionLayer& layer);
// [B, H, L, D] -> [B, L, H·D].
torch::Tensor merge_heads(const torch::Tensor& o);
// The key mask of tokens [offset, offset + length) for SDPA, [1, 1, 1, length] on `device`; undefined when every key
// is valid (no empty adaptive slots).
torch::Tensor key_mask(const SequenceContext& seq, int64_t offset, int64_t length, const torch::Device& device);
// softmax(q·kᵀ/√D + mask)·v per head; fused SDPA where the layer allows and LibTorch has it.
torch::Tensor attend(const Heads& heads, const torch::Tensor& mask, const AttentionLayer& layer);

// The tokens of a group of ranks: rank q of `comm` holds counts[q] consecutive tokens starting at offset + Σ_{p<q}.
struct TokenSplit {
  std::vector<int64_t> counts;
  int64_t offset = 0;  // global index of the first token of rank 0
  int64_t total() const;
  int64_t offset_of(int rank) const;  // global index of rank's first token
};

// lss-kv over any group: every rank's k, v [B, h, L_q, D] gathered with ONE all-gather of a packed [k ‖ v] buffer,
// then this rank's queries attend to the group's keys. Used by hybrid (lss-kv across Ulysses groups).
torch::Tensor gather_kv_and_attend(const Heads& local, const CommPtr& comm, const TokenSplit& split,
                                   const SequenceContext& seq, const AttentionLayer& layer);
// Ring attention over `comm` (ring.cpp): this rank's q, k, v [B, h, L_q, D]; returns [B, h, L_q, D].
void set_event_log(std::vector<std::string>* log);  // set_ring_event_log
torch::Tensor ring_attend(const Heads& local, const CommPtr& comm, const TokenSplit& split, const SequenceContext& seq,
                          const AttentionLayer& layer);

// Ulysses' all-to-alls over a group (ulysses.cpp). The heads are split over the group's ranks as evenly as possible
// (the first H mod U ranks get one more), the tokens as `split` says.
struct HeadGroups {
  std::vector<int64_t> counts;  // heads per rank
  int64_t offset_of(int rank) const;
};
HeadGroups head_groups(int64_t heads, int ranks);
// q, k, v of this rank's tokens, all heads -> q, k, v of the group's tokens, this rank's heads. ONE all-to-all.
Heads tokens_to_heads(const Heads& local, const CommPtr& comm, const TokenSplit& split, const HeadGroups& groups);
// The adjoint layout change for the output: [B, h_me, L_group, D] -> [B, H, L_me, D]. ONE all-to-all.
torch::Tensor heads_to_tokens(const torch::Tensor& o, const CommPtr& comm, const TokenSplit& split,
                              const HeadGroups& groups);

}  // namespace spvit::model::attention

// Strategy `local`: the whole sequence on this rank — the single-process reference every other strategy is tested
// against.
#include "strategies.h"

namespace spvit::model::attention {

torch::Tensor forward_local(const torch::Tensor& h, const AttentionLayer& layer, const SequenceContext& seq) {
  const auto heads = project_heads(h, layer);
  return merge_heads(attend(heads, key_mask(seq, 0, h.size(1), h.device()), layer));
}

}  // namespace spvit::model::attention

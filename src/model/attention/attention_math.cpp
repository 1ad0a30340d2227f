// The pieces every attention strategy shares: projection into heads, key masks, the attention kernel, and the lss-kv
// gather over an arbitrary group (the hybrid strategy's outer step).
#include "strategies.h"

#include "spvit/core/error.h"
#include "spvit/core/torch_compat.h"
#include "spvit/dist/collectives.h"

namespace spvit::model::attention {

Heads project_heads(const torch::Tensor& h, const AttentionLayer& layer) {
  const int64_t B = h.size(0), L = h.size(1), H = layer.options.heads, D = layer.options.dim / H;
  auto qkv = layer.qkv.forward(h).view({B, L, 3, H, D});
  return {qkv.select(2, 0).transpose(1, 2), qkv.select(2, 1).transpose(1, 2), qkv.select(2, 2).transpose(1, 2)};
}

torch::Tensor merge_heads(const torch::Tensor& o) {
  const int64_t B = o.size(0), H = o.size(1), L = o.size(2), D = o.size(3);
  return o.transpose(1, 2).reshape({B, L, H * D});
}

torch::Tensor key_mask(const SequenceContext& seq, int64_t offset, int64_t length, const torch::Device& device) {
  if (!seq.key_valid.defined()) return {};
  return seq.key_valid.narrow(0, offset, length).to(device).view({1, 1, 1, length});
}

torch::Tensor attend(const Heads& heads, const torch::Tensor& mask, const AttentionLayer& layer) {
  return compat::scaled_dot_product_attention(heads.q, heads.k, heads.v, mask, layer.options.allow_fused_kernel);
}

int64_t TokenSplit::total() const {
  int64_t n = 0;
  for (auto c : counts) n += c;
  return n;
}

int64_t TokenSplit::offset_of(int rank) const {
  int64_t at = offset;
  for (int q = 0; q < rank; ++q) at += counts[static_cast<size_t>(q)];
  return at;
}

torch::Tensor gather_kv_and_attend(const Heads& local, const CommPtr& comm, const TokenSplit& split,
                                   const SequenceContext& seq, const AttentionLayer& layer) {
  const auto mask = key_mask(seq, split.offset, split.total(), local.q.device());
  if (comm == nullptr || comm->size() == 1) return attend(local, mask, layer);
  // Token-major [L_q, 2, B, h, D], so that the gathered buffer of uneven segments is [L, 2, B, h, D].
  auto packed = torch::stack({local.k, local.v}, 0).permute({3, 0, 1, 2, 4}).contiguous();
  auto gathered = dist::gather_rows(packed, comm, split.counts);  // ONE all-gather
  auto k = gathered.select(1, 0).permute({1, 2, 0, 3});          // [B, h, L, D] views
  auto v = gathered.select(1, 1).permute({1, 2, 0, 3});
  return attend(Heads{local.q, k, v}, mask, layer);
}

}  // namespace spvit::model::attention

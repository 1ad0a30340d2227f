// Strategy `ring` (ring attention): each rank keeps its own K/V block and the blocks rotate around the sequence group
// in N_s − 1 grouped send/receives (Communicator::send_recv). At step t rank s holds the block of rank s − t; the
// transfer of the next block is posted BEFORE the current block's attention, so on a GPU the transfer overlaps the
// compute. Each block gives a partial result normalised within the block and its log-sum-exp; the partial results
// are merged by the log-sum-exp rule in (at least) float32, whatever the compute dtype:
//
//   lse = log(e^lse_a + e^lse_b),   o = o_a·e^(lse_a − lse) + o_b·e^(lse_b − lse).
//
// The key mask of a block comes from the block's owner (its tokens' global positions), so empty adaptive slots stay
// masked wherever the block travels. A rank holds only L_s keys at a time plus one incoming block.
//
// Backward is the reverse ring (as FlashAttention's backward, block by block, with the final log-sum-exp): the K/V
// blocks rotate again and each block's [dK ‖ dV] accumulator travels with it, picking up every rank's contribution,
// and arrives back at its owner after N_s transfers; dQ stays local. Per layer: N_s − 1 send/receives forward,
// (N_s − 1) + N_s backward.
#include <limits>
#include <optional>

#include "spvit/core/autograd_capsule.h"
#include "spvit/core/error.h"
#include "spvit/core/torch_compat.h"
#include "strategies.h"

namespace spvit::model::attention {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

constexpr int kBlockTag = 501;     // K/V blocks
constexpr int kGradientTag = 502;  // their [dK ‖ dV] accumulators (backward)
std::vector<std::string>*& event_log() {
  static std::vector<std::string>* log = nullptr;
  return log;
}

void log_event(const char* what, int step) {
  if (event_log() != nullptr) event_log()->push_back(std::string(what) + " " + std::to_string(step));
}

// Where the blocks are: block of rank r = tokens [offsets[r], offsets[r] + counts[r]) of the whole sequence.
struct RingLayout {
  std::vector<int64_t> counts, offsets;
  torch::Tensor key_valid;  // [L] bool of the whole sequence, undefined = every key valid
  bool fused = true;        // forward blocks may use the fused kernel (AttentionOptions::allow_fused_kernel)
  torch::Tensor block_mask(int owner, const torch::Device& device) const {
    if (!key_valid.defined()) return {};
    const auto r = static_cast<size_t>(owner);
    return key_valid.narrow(0, offsets[r], counts[r]).to(device).view({1, 1, 1, -1});
  }
};

// The merge and statistics dtype: float32 for 16-bit inputs, float64 for float64 (exactness tests).
torch::ScalarType accumulator_dtype(torch::ScalarType t) { return t == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32; }

// Scaled, masked scores of q against one block, in the accumulator dtype.
torch::Tensor block_scores(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& mask,
                           torch::ScalarType acc) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto s = torch::matmul(q, k.transpose(-2, -1)).to(acc) * scale;
  if (mask.defined()) s = s.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  return s;
}

// A log-sum-exp with -inf (no valid key) replaced by 0, so that exp(s - lse) is 0 rather than NaN there.
torch::Tensor finite(const torch::Tensor& lse) { return torch::where(torch::isinf(lse), torch::zeros_like(lse), lse); }

struct Partial {
  torch::Tensor out, lse;  // [B, h, Lq, D] and [B, h, Lq], accumulator dtype
};

// On CUDA (float32/16-bit) the fused memory-efficient kernel, which returns the log-sum-exp; the block's masked keys
// are dropped first (the mask is per key, so this is exact and needs no bias), and a block without valid keys adds
// nothing. Everywhere else, and when the kernel refuses the input, the math below.
std::optional<Partial> fused_block_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                             const torch::Tensor& mask, torch::ScalarType acc) {
  if (!q.is_cuda() || q.scalar_type() == torch::kFloat64) return std::nullopt;
  torch::Tensor keys = k, values = v;
  if (mask.defined()) {
    const auto keep = mask.reshape({-1}).nonzero().reshape({-1});
    if (keep.numel() == 0) {
      return Partial{torch::zeros(q.sizes(), q.options().dtype(acc)),
                     torch::full({q.size(0), q.size(1), q.size(2)}, -std::numeric_limits<double>::infinity(),
                                 q.options().dtype(acc))};
    }
    if (keep.numel() < k.size(2)) {
      keys = k.index_select(2, keep);
      values = v.index_select(2, keep);
    }
  }
  auto fused = compat::fused_attention_with_lse(q, keys, values);
  if (!fused) return std::nullopt;
  return Partial{fused->first.to(acc), fused->second.to(acc)};
}

Partial block_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask, torch::ScalarType acc, bool allow_fused) {
  if (allow_fused) {
    if (auto fused = fused_block_attention(q, k, v, mask, acc)) return *fused;
  }
  auto s = block_scores(q, k, mask, acc);
  auto lse = torch::logsumexp(s, -1);
  auto p = torch::exp(s - finite(lse).unsqueeze(-1));
  return {torch::matmul(p, v.to(acc)), lse};
}

void merge(Partial& total, const Partial& block) {
  auto lse = torch::logaddexp(total.lse, block.lse);
  auto base = finite(lse);
  total.out = total.out * torch::exp(total.lse - base).unsqueeze(-1) +
              block.out * torch::exp(block.lse - base).unsqueeze(-1);
  total.lse = lse;
}

// Posts the shift of `current` (block of rank `owner`) to the next rank and the receive of the previous rank's block
// (of rank owner − 1) into a new buffer of that block's shape.
struct Shift {
  dist::WorkPtr work;
  torch::Tensor incoming;
};
Shift post_shift(dist::Communicator& comm, const torch::Tensor& current, int64_t incoming_tokens, int64_t token_dim,
                 int tag) {
  const int n = comm.size(), me = comm.rank();
  auto shape = current.sizes().vec();
  shape[static_cast<size_t>(token_dim)] = incoming_tokens;
  auto incoming = torch::empty(shape, current.options());
  return {comm.send_recv(current, (me + 1) % n, incoming, (me + n - 1) % n, tag), incoming};
}

struct RingAttentionFunction : public torch::autograd::Function<RingAttentionFunction> {
  static Variable forward(AutogradContext* ctx, const Variable& q, const Variable& k, const Variable& v,
                          const CommPtr& comm, const RingLayout& layout) {
    const int n = comm->size(), me = comm->rank();
    const auto acc = accumulator_dtype(q.scalar_type());
    auto current = torch::stack({k, v}, 0).contiguous();  // [2, B, h, L_owner, D]: one message per step
    int owner = me;
    Partial total{torch::zeros(q.sizes(), q.options().dtype(acc)),
                  torch::full({q.size(0), q.size(1), q.size(2)}, -std::numeric_limits<double>::infinity(),
                              q.options().dtype(acc))};
    for (int t = 0; t < n; ++t) {
      const int next_owner = (owner + n - 1) % n;
      Shift shift;
      if (t + 1 < n) {
        shift = post_shift(*comm, current, layout.counts[static_cast<size_t>(next_owner)], 3, kBlockTag);
        log_event("post", t + 1);
      }
      log_event("attend", t);
      merge(total, block_attention(q, current[0], current[1], layout.block_mask(owner, q.device()), acc, layout.fused));
      if (shift.work) {
        shift.work->wait();
        log_event("wait", t + 1);
        current = shift.incoming;
        owner = next_owner;
      }
    }
    ctx->saved_data["comm"] = to_capsule(comm);
    ctx->saved_data["counts"] = layout.counts;
    ctx->saved_data["offsets"] = layout.offsets;
    ctx->saved_data["masked"] = layout.key_valid.defined();
    ctx->save_for_backward({q, k, v, total.out, total.lse,
                            layout.key_valid.defined() ? layout.key_valid : torch::Tensor()});
    return total.out.to(q.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const CommPtr comm = from_capsule<CommPtr>(ctx->saved_data["comm"]);
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    RingLayout layout{ctx->saved_data["counts"].toIntVector(), ctx->saved_data["offsets"].toIntVector(),
                      ctx->saved_data["masked"].toBool() ? saved[5] : torch::Tensor()};
    const int n = comm->size(), me = comm->rank();
    const auto acc = out.scalar_type();
    const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    const auto g = grad_outputs[0].to(acc);
    const auto delta = (g * out).sum(-1, /*keepdim=*/true);  // rowsum(dO ⊙ O)
    const auto lse_finite = finite(lse).unsqueeze(-1);
    const auto q_acc = q.to(acc);
    auto dq = torch::zeros_like(q_acc);
    auto current = torch::stack({k, v}, 0).contiguous();
    auto current_grad = torch::zeros(current.sizes(), current.options().dtype(acc));  // [dK ‖ dV] of that block
    int owner = me;
    for (int t = 0; t < n; ++t) {
      const int next_owner = (owner + n - 1) % n;
      Shift kv_shift;
      if (t + 1 < n) kv_shift = post_shift(*comm, current, layout.counts[static_cast<size_t>(next_owner)], 3, kBlockTag);
      const auto k_b = current[0].to(acc), v_b = current[1].to(acc);
      const auto p = torch::exp(block_scores(q, current[0], layout.block_mask(owner, q.device()), acc) - lse_finite);
      const auto dp = torch::matmul(g, v_b.transpose(-2, -1));
      const auto ds = p * (dp - delta);
      dq += torch::matmul(ds, k_b) * scale;
      current_grad[0] += torch::matmul(ds.transpose(-2, -1), q_acc) * scale;
      current_grad[1] += torch::matmul(p.transpose(-2, -1), g);
      // The accumulator follows its block; after N_s shifts each rank holds its own block's complete gradient.
      auto grad_shift = post_shift(*comm, current_grad, layout.counts[static_cast<size_t>(next_owner)], 3, kGradientTag);
      if (kv_shift.work) kv_shift.work->wait();
      grad_shift.work->wait();
      current = kv_shift.incoming;
      current_grad = grad_shift.incoming;
      owner = next_owner;
    }
    const auto dtype = q.scalar_type();
    return {dq.to(dtype), current_grad[0].to(dtype), current_grad[1].to(dtype), Variable(), Variable()};
  }
};

}  // namespace

void set_event_log(std::vector<std::string>* log) { event_log() = log; }

torch::Tensor ring_attend(const Heads& local, const CommPtr& comm, const TokenSplit& split, const SequenceContext& seq,
                          const AttentionLayer& layer) {
  if (comm == nullptr || comm->size() == 1) {
    return attend(local, key_mask(seq, split.offset, split.total(), local.q.device()), layer);
  }
  RingLayout layout;
  layout.counts = split.counts;
  for (int r = 0; r < comm->size(); ++r) layout.offsets.push_back(split.offset_of(r));
  layout.key_valid = seq.key_valid;
  layout.fused = layer.options.allow_fused_kernel;
  return RingAttentionFunction::apply(local.q, local.k, local.v, comm, layout);
}

torch::Tensor forward_ring(const torch::Tensor& h, const AttentionLayer& layer, const SequenceContext& seq) {
  const TokenSplit split{seq.shard.counts, 0};
  return merge_heads(ring_attend(project_heads(h, layer), seq.comm, split, seq, layer));
}

}  // namespace spvit::model::attention

namespace spvit::model {
void set_ring_event_log(std::vector<std::string>* log) { attention::set_event_log(log); }
}  // namespace spvit::model

#include "spvit/model/selftest.h"

#include "spvit/core/error.h"
#include "spvit/core/live_memory.h"
#include "spvit/dist/gradient_averager.h"
#include "spvit/model/vit_encoder.h"

namespace spvit::model {
namespace {

using dist::CollectiveOp;

// max |a - b| / max |b|: relative to the reference tensor's scale (a tensor of zeros compares absolutely).
double relative_error(const torch::Tensor& value, const torch::Tensor& reference) {
  const auto v = value.to(torch::kCPU, torch::kFloat64), ref = reference.to(torch::kCPU, torch::kFloat64);
  const double diff = (v - ref).abs().max().item<double>();
  const double scale = ref.abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

struct Sample {
  torch::Tensor tokens;   // [B, L, F]
  torch::Tensor weights;  // [B, L, E]: the loss is sum(out * weights) / (B * L_valid)
  TokenMetadata meta;     // for the whole sequence
};

// The same sample on every rank of data group d (a fixed seed per group).
Sample make_sample(const SelftestOptions& o, const EncoderOptions& enc, int data_index) {
  torch::manual_seed(o.seed + 1000003ULL * static_cast<uint64_t>(data_index + 1));
  auto opts = torch::TensorOptions().dtype(o.dtype);
  Sample s;
  s.tokens = torch::randn({o.batch, o.length, enc.in_features}, opts);
  s.weights = torch::randn({o.batch, o.length, enc.dim}, opts);
  if (o.empty_tokens > 0) s.weights.narrow(1, o.length - o.empty_tokens, o.empty_tokens).zero_();
  s.meta.index = torch::arange(o.length, torch::kLong);
  s.meta.coords = torch::rand({o.length, enc.coord_features}, opts);
  return s;
}

// Every world rank's LayerAccounting, in world-rank order (one all-gather on the world).
std::vector<LayerAccounting> gather_accounting(const dist::ProcessGrid& grid, const LayerAccounting& mine) {
  auto local = torch::tensor({mine.forward_sent, mine.forward_received, mine.backward_sent, mine.backward_received,
                              mine.kept}, torch::kLong);
  const int n = grid.world()->size();
  auto all = torch::empty({n * 5}, torch::kLong);
  grid.world()->all_gather(local, all, std::vector<int64_t>(static_cast<size_t>(n), 5))->wait();
  std::vector<LayerAccounting> out;
  for (int r = 0; r < n; ++r) {
    const auto v = all.narrow(0, r * 5, 5);
    out.push_back({v[0].item<int64_t>(), v[1].item<int64_t>(), v[2].item<int64_t>(), v[3].item<int64_t>(),
                   v[4].item<int64_t>()});
  }
  return out;
}

}  // namespace

int64_t attention_kept_bytes(const AttentionOptions& options, const SequenceContext& seq, int64_t batch,
                             const torch::Device& device, torch::ScalarType dtype) {
  MultiHeadAttention attention(options);
  attention->to(device, dtype);
  auto h = torch::randn({batch, seq.shard.local_length(), options.dim}, torch::TensorOptions(dtype).device(device))
               .requires_grad_();
  LiveMemoryProbe probe(device.type());
  auto out = attention->forward(h, seq);
  return probe.net_bytes() - storage_bytes({out});
}

double selftest_tolerance(torch::ScalarType dtype, const torch::Device& device) {
  if (dtype == torch::kFloat64) return 1e-10;
  return device.is_cuda() ? 1e-4 : 1e-5;
}

SelftestResult run_sequence_parallel_selftest(const dist::ProcessGrid& grid, const SelftestOptions& o) {
  SPVIT_CHECK(o.length >= grid.seq_size(), "selftest: length ", o.length, " is shorter than the sequence group (",
              grid.seq_size(), " ranks)");
  SPVIT_CHECK(o.empty_tokens >= 0 && o.empty_tokens < o.length, "selftest: empty_tokens must be in [0, length)");
  EncoderOptions enc;
  enc.in_features = 3 * o.patch * o.patch;
  enc.dim = o.dim;
  enc.depth = o.layers;
  enc.heads = o.heads;
  enc.mlp_ratio = 2.0;
  enc.pos_encoding = parse_positional_encoding(o.pos_encoding);
  enc.max_tokens = o.length;
  enc.coord_features = 3;
  enc.attention = parse_attention_strategy(o.strategy);
  enc.ulysses_size = o.ulysses_size;
  enc.hybrid_outer = parse_attention_strategy(o.hybrid_outer);
  enc.checkpointing = o.checkpointing;

  torch::manual_seed(o.seed);  // identical parameters on every rank
  ViTEncoder model(enc);
  model->to(o.device, o.dtype);
  EncoderOptions ref_opts = enc;
  ref_opts.attention = AttentionStrategy::Local;
  ref_opts.checkpointing = false;
  ViTEncoder reference(ref_opts);
  reference->to(o.dtype);
  {
    torch::NoGradGuard no_grad;
    auto src = model->parameters(), dst = reference->parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i].cpu());
  }

  const int d = grid.data_index();
  const auto shard = dist::SequenceShard::even(o.length, grid.seq_size(), grid.seq_index());
  auto seq = shard.context(grid.seq());
  torch::Tensor key_valid;
  if (o.empty_tokens > 0) key_valid = torch::arange(o.length) < (o.length - o.empty_tokens);
  if (key_valid.defined()) seq.key_valid = key_valid.to(o.device);
  const double loss_norm = static_cast<double>(o.batch * (o.length - o.empty_tokens));

  // ---- distributed step: this rank's segment, loss normalised by the whole sample, double averaging.
  Sample sample = make_sample(o, enc, d);
  const int64_t off = shard.offset(), len = shard.local_length();
  const auto on_device = [&](const torch::Tensor& t) { return t.narrow(t.dim() == 3 ? 1 : 0, off, len).to(o.device); };
  dist::GradientAverager averager(model->parameters(), grid.world(), grid.seq(), grid.data(),
                                  {dist::GradientAverager::parse_mode(o.grad_average), o.bucket_mb});
  auto& seq_comm = *grid.seq();
  seq_comm.reset_counters();
  auto out = model->forward(on_device(sample.tokens), {on_device(sample.meta.index), on_device(sample.meta.coords)}, seq);
  auto loss = (out * on_device(sample.weights)).sum() / loss_norm;
  const auto after_forward = seq_comm.counters_with_subgroups();
  loss.backward();
  averager.finish();
  const auto after_backward = seq_comm.counters_with_subgroups();

  SelftestResult r;
  r.tolerance = selftest_tolerance(o.dtype, o.device);
  r.buckets = averager.num_buckets();
  r.forward = after_forward;
  r.backward = after_backward - after_forward;
  r.forward_all_gathers = after_forward.calls_of(CollectiveOp::AllGather);
  r.backward_all_gathers = after_backward.calls_of(CollectiveOp::AllGather) - r.forward_all_gathers;
  r.backward_reduce_scatters = after_backward.calls_of(CollectiveOp::ReduceScatter);
  for (size_t k = 0; k < static_cast<size_t>(CollectiveOp::kCount); ++k) {
    const auto op = static_cast<CollectiveOp>(k);
    if (op != CollectiveOp::AllGather && op != CollectiveOp::ReduceScatter) {
      r.other_seq_collectives += after_backward.calls_of(op);
    }
  }

  LayerAccounting layer;
  layer.forward_sent = r.forward.total_sent() / o.layers;
  layer.forward_received = r.forward.total_received() / o.layers;
  layer.backward_sent = r.backward.total_sent() / o.layers;
  layer.backward_received = r.backward.total_received() / o.layers;
  layer.kept = attention_kept_bytes({enc.dim, enc.heads, enc.attention, enc.allow_fused_attention, enc.ulysses_size,
                                     enc.hybrid_outer},
                                    seq, o.batch, o.device, o.dtype);
  r.per_rank = gather_accounting(grid, layer);

  // ---- single-process reference: every data group's sample, whole sequence, gradients averaged over groups.
  torch::Tensor ref_out, ref_loss;
  const auto whole = dist::SequenceShard::whole(o.length).context(nullptr, key_valid);
  for (int g = 0; g < grid.data_size(); ++g) {
    Sample s = g == d ? sample : make_sample(o, enc, g);
    auto y = reference->forward(s.tokens, s.meta, whole);
    auto l = (y * s.weights).sum() / loss_norm;
    (l / grid.data_size()).backward();
    if (g == d) {
      ref_out = y.detach();
      ref_loss = l.detach();
    }
  }

  // ---- compare (the seq collectives here come after the counted step).
  torch::NoGradGuard no_grad;
  auto full_out = dist::all_gather_rows(seq_comm, out.detach().transpose(0, 1).contiguous(), shard.counts)
                      .transpose(0, 1);
  auto total_loss = loss.detach().to(torch::kCPU).clone().reshape({1});
  seq_comm.all_reduce(total_loss, dist::ReduceOp::Sum)->wait();
  auto errors = torch::zeros({3}, torch::kFloat64);
  errors[0] = relative_error(full_out, ref_out);
  errors[1] = relative_error(total_loss, ref_loss.reshape({1}));
  auto params = model->parameters(), ref_params = reference->parameters();
  double grad_err = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    SPVIT_CHECK(params[i].grad().defined() && ref_params[i].grad().defined(), "selftest: parameter ", i,
                " has no gradient");
    grad_err = std::max(grad_err, relative_error(params[i].grad(), ref_params[i].grad()));
  }
  errors[2] = grad_err;
  grid.world()->all_reduce(errors, dist::ReduceOp::Max)->wait();
  r.max_rel_err_out = errors[0].item<double>();
  r.max_rel_err_loss = errors[1].item<double>();
  r.max_rel_err_grad = errors[2].item<double>();
  return r;
}

}  // namespace spvit::model

#include "spvit/plan/step_model.h"

#include <algorithm>
#include <cmath>

#include "spvit/core/torch_compat.h"
#include "spvit/core/error.h"
#include "spvit/model/decoder.h"

namespace spvit::plan {
namespace {

double pixels_per_token(const ModelConfig& m) {
  return std::pow(static_cast<double>(m.patch), static_cast<double>(m.spatial_dims));
}

// Encoder parameters: per block (4 + 2r)·E² weights + (9 + r)·E biases and norms, the patch embedding, the final
// norm, and the positional encoding (a learned table of max_tokens rows; a small coordinate MLP).
double encoder_params(const ModelConfig& m) {
  const double E = static_cast<double>(m.dim), r = m.mlp_ratio;
  const double blocks = static_cast<double>(m.depth) * ((4.0 + 2.0 * r) * E * E + (9.0 + r) * E);
  const double embed = static_cast<double>(m.channels) * pixels_per_token(m) * E + E + 2.0 * E;
  const double position = m.pos_encoding == "grid" ? static_cast<double>(m.max_tokens) * E
                          : m.pos_encoding == "coords" ? (static_cast<double>(m.spatial_dims) + 1.0) * E + E * E
                                                       : 0.0;
  return blocks + embed + position;
}

// The decoder's parameters, counted on the module itself (built on the CPU: a few MB).
double decoder_params(const ModelConfig& m, int64_t classes) {
  const auto decoder = model::decoders().at(m.decoder).make(model::DecoderOptions::from_config(m, classes));
  double n = 0;
  for (const auto& p : decoder->parameters()) n += static_cast<double>(p.numel());
  return n;
}

double decoder_flops(const ModelConfig& m, int64_t classes) {
  const auto o = model::DecoderOptions::from_config(m, classes);
  const auto& entry = model::decoders().at(m.decoder);
  SPVIT_CHECK(entry.forward_flops_per_token != nullptr, "decoder '", m.decoder,
              "' does not count its FLOPs (model::DecoderEntry::forward_flops_per_token)");
  return entry.forward_flops_per_token(o);
}

// The values the decoder keeps per output pixel for backward (docs/cluster.md, "Memory per rank"): the unetr
// stages' activations (~12 × the finest stage's width) and ~10 per class in the head, softmax and loss.
double decoder_values_per_pixel(const ModelConfig& m, int64_t classes) {
  const double head = 10.0 * static_cast<double>(classes);
  return model::decoders().at(m.decoder).uniform_bands ? 12.0 * static_cast<double>(m.decoder_width) + head : head;
}

// Where the ranks sit: world rank r on node r / R (block placement, docs/cluster.md "Rank placement"); a sequence
// group is N_s consecutive ranks, a data group every N_s-th rank.
struct Placement {
  int per_node = 1;  // ranks on a node
  int nodes = 1;
  bool seq_across(int64_t seq) const { return seq > per_node; }
  bool world_across() const { return nodes > 1; }
};

class StepModel {
 public:
  StepModel(const Workload& w, const MachineSpec& m, const Candidate& c, int ranks)
      : w_(w), m_(m), c_(c), ranks_(ranks) {
    SPVIT_CHECK(c.data * c.seq == ranks, "plan: grid ", c.data, "x", c.seq, " does not make ", ranks, " ranks");
    const int per_node = m.ranks_per_node_int();
    place_.per_node = std::min(ranks, per_node);
    place_.nodes = (ranks + per_node - 1) / per_node;
    if (m.kind == "cpu") {
      // A cpu machine file describes one node that runs every rank of the job: ranks x threads beyond its cores
      // share them (what mpirun --oversubscribe does), and every collective stays inside the node.
      oversubscription_ = std::max(1.0, ranks * m.threads_per_rank.value / m.cores_per_node.value);
      place_.per_node = ranks;
      place_.nodes = 1;
    }
    n_ = std::ceil(static_cast<double>(w.tokens) / static_cast<double>(c.seq));
  }

  Prediction run() {
    Prediction p;
    p.candidate = c_;
    p.ranks = ranks_;
    p.nodes = place_.nodes;
    p.oversubscription = oversubscription_;
    compute(p);
    communication(p);
    p.memory = memory_per_rank(w_, c_, ranks_, fused_attention());
    p.fits = p.memory.total() <= 0.9 * m_.memory_gib.value * 1073741824.0;
    p.step_ms = p.compute_ms() + p.comm_ms;
    const double samples = static_cast<double>(w_.batch * c_.data);
    p.samples_per_s = samples / (p.step_ms / 1e3);
    p.model_tflops = encoder_model_flops(w_.model, w_.tokens) * samples / (p.step_ms / 1e3) / 1e12;
    return p;
  }

 private:
  bool fused_attention() const { return m_.kind == "gpu" || SPVIT_TORCH_HAS_SDPA != 0; }
  double rate(const std::map<std::string, Sourced>& rates, const char* key) const {
    return m_.rate(rates, w_.precision, key).value * 1e12;
  }
  double bandwidth() const { return m_.memory_bandwidth_gbs.value * 1e9; }

  // The roofline: FLOPs at the matching rate, element-wise traffic at the memory bandwidth.
  void compute(Prediction& p) const {
    const auto& md = w_.model;
    const double B = static_cast<double>(w_.batch), E = static_cast<double>(md.dim);
    const double D = static_cast<double>(md.depth), L = static_cast<double>(w_.tokens), r = md.mlp_ratio;
    const double b = w_.element_bytes, f = oversubscription_;
    // forward + backward = 3 forward passes; checkpointing recomputes each block's forward once more.
    const double passes = c_.checkpointing ? 4.0 : 3.0;
    double linear = D * (8.0 + 4.0 * r) * B * n_ * E * E;
    if (c_.strategy == "lss-x" && c_.seq > 1) linear += D * 4.0 * B * (L - n_) * E * E;  // every rank projects K, V
    const double embed = 2.0 * B * n_ * static_cast<double>(md.channels) * pixels_per_token(md) * E;
    p.linear_ms = f * 1e3 * (passes * linear + 3.0 * embed) / rate(m_.matmul_tflops, "matmul_tflops");
    const double attention = D * 4.0 * B * n_ * L * E;  // q·kᵀ and p·v over all L keys, for this rank's queries
    // The ring's backward recomputes each block's scores (one more q·kᵀ: 5 matmuls against the usual 4).
    const double attention_passes = passes + (uses_ring() ? 0.5 : 0.0);
    p.attention_ms = f * 1e3 * attention_passes * attention /
                     (m_.attention_rate(w_.precision, scores_per_call()) * 1e12);
    // Element-wise work per block: each of the (10 + 2r)·E values a token keeps for backward is written in forward,
    // read and its gradient written in backward (docs/cluster.md, "Memory per rank").
    p.elementwise_ms = f * 1e3 * (passes * D * (10.0 + 2.0 * r) * B * n_ * E * b) / bandwidth();
    const auto decoder = decoder_cost(w_, B * n_);
    p.decoder_ms = f * (m_.decoder_overhead_ms.value +
                        1e3 * (decoder.flops / rate(m_.conv_tflops, "conv_tflops") + decoder.bytes / bandwidth()));
    // AdamW reads parameter, gradient, m, v and writes three of them (fp32), plus zeroing and bucket copies.
    p.optimizer_ms = f * 1e3 * (10.0 * 4.0 * w_.params) / bandwidth();
  }

  bool uses_ring() const {
    return c_.seq > 1 && (c_.strategy == "ring" || (c_.strategy == "hybrid" && c_.hybrid_outer == "ring"));
  }

  // The score matrix of one attention call (batch × heads × queries × keys): on a CPU it decides whether the
  // explicit kernel works from the caches (MachineSpec::attention_curve). The strategies cut the same L² work
  // differently: lss-kv/lss-x this rank's queries against all keys, ulysses all queries for H/N_s heads, ring one
  // N_s-th of the keys per call.
  double scores_per_call() const {
    const auto& md = w_.model;
    const double B = static_cast<double>(w_.batch), H = static_cast<double>(md.heads);
    const double L = static_cast<double>(w_.tokens), S = static_cast<double>(c_.seq);
    if (c_.seq <= 1) return B * H * L * L;
    const std::string& s = c_.strategy;
    if (s == "ring") return B * H * n_ * n_;
    if (s == "ulysses") return B * (H / S) * L * L;
    if (s == "hybrid") {
      const double u = static_cast<double>(std::max<int64_t>(1, c_.ulysses_size)), chunk = L / (S / u);
      return B * (H / u) * chunk * (c_.hybrid_outer == "ring" ? chunk : L);
    }
    return B * H * n_ * L;
  }

  const LinkSpec& link(bool across_nodes) const { return across_nodes ? m_.inter_node : m_.intra_node; }

  // Adds `calls` collectives of `bytes` each on a group of `ranks`.
  void add(Prediction& p, const std::string& op, const std::string& group, int ranks, bool across, double calls,
           double bytes) const {
    if (ranks <= 1 || calls <= 0) return;
    CollectivePart part;
    part.op = op;
    part.group = group;
    part.ranks = ranks;
    part.across_nodes = across;
    part.calls = calls;
    const double P = ranks;
    const double factor = op == "all_reduce" ? 2.0 * (P - 1.0) / P : op == "send_recv" ? 1.0 : (P - 1.0) / P;
    part.bus_bytes = calls * bytes * factor;
    // On a cpu machine the copies run on the same cores as the compute: oversubscription slows them alike.
    const double shared = m_.kind == "cpu" ? oversubscription_ : 1.0;
    part.ms = shared * 1e3 * calls * collective_seconds(op, ranks, bytes, link(across));
    p.collectives.push_back(part);
  }

  // The strategies' collectives per layer (docs/sequence-parallel.md, "Counting bytes"), then the step's gradient
  // averaging and its finiteness check.
  void communication(Prediction& p) const {
    const auto& md = w_.model;
    const double B = static_cast<double>(w_.batch), E = static_cast<double>(md.dim), L = static_cast<double>(w_.tokens);
    const double D = static_cast<double>(md.depth), b = w_.element_bytes;
    const int S = static_cast<int>(c_.seq);
    const bool across = place_.seq_across(c_.seq);
    const double forwards = c_.checkpointing ? 2.0 : 1.0;  // checkpointing repeats the forward collectives
    if (S > 1) {
      const std::string& s = c_.strategy;
      if (s == "lss-kv") {
        add(p, "all_gather", "seq", S, across, D * forwards, 2.0 * B * L * E * b);
        add(p, "reduce_scatter", "seq", S, across, D, 2.0 * B * L * E * b);
      } else if (s == "lss-x") {
        add(p, "all_gather", "seq", S, across, D * forwards, B * L * E * b);
        add(p, "reduce_scatter", "seq", S, across, D, B * L * E * b);
      } else if (s == "ulysses") {
        // q, k, v to heads (3 blocks), the output back to tokens (1): each all-to-all's buffer is n·E per block.
        add(p, "all_to_all", "seq", S, across, D * (forwards + 1.0) * 2.0, 2.0 * B * n_ * E * b);
      } else if (s == "ring") {
        // forward S−1 shifts of K‖V; backward the same plus S shifts of the fp32 [dK ‖ dV] accumulators.
        const double kv = 2.0 * B * n_ * E * b, acc = 2.0 * B * n_ * E * 4.0;
        add(p, "send_recv", "seq", S, across, D * (forwards + 1.0) * (S - 1), kv);
        add(p, "send_recv", "seq", S, across, D * S, acc);
      } else if (s == "hybrid") {
        const int u = static_cast<int>(c_.ulysses_size), g = S / std::max(1, u);
        const bool inner_across = place_.seq_across(u), outer_across = across;
        const double chunk = L / g;  // the tokens of one Ulysses group
        if (u > 1) add(p, "all_to_all", "ulysses", u, inner_across, D * (forwards + 1.0) * 2.0, 2.0 * B * n_ * E * b);
        const double width = E / std::max(1, u);
        if (c_.hybrid_outer == "ring") {
          add(p, "send_recv", "outer", g, outer_across, D * (forwards + 1.0) * (g - 1), 2.0 * B * chunk * width * b);
          add(p, "send_recv", "outer", g, outer_across, D * g, 2.0 * B * chunk * width * 4.0);
        } else {
          add(p, "all_gather", "outer", g, outer_across, D * forwards, 2.0 * B * L * width * b);
          add(p, "reduce_scatter", "outer", g, outer_across, D, 2.0 * B * L * width * b);
        }
      }
    }
    // Gradients: fp32 buckets, summed over the sequence group and averaged over data groups.
    const double grads = 4.0 * w_.params, buckets = std::max(1.0, std::ceil(grads / w_.bucket_bytes));
    if (w_.grad_average == "two-stage" && c_.data > 1 && S > 1) {
      add(p, "reduce", "seq", S, across, buckets, grads / buckets);
      add(p, "all_reduce", "data", static_cast<int>(c_.data), place_.world_across(), buckets, grads / buckets);
      add(p, "broadcast", "seq", S, across, buckets, grads / buckets);
    } else {
      add(p, "all_reduce", "world", ranks_, place_.world_across(), buckets, grads / buckets);
    }
    add(p, "all_reduce", "world", ranks_, place_.world_across(), 1.0, 16.0);  // finite-loss and stop-flag check
    for (auto& part : p.collectives) {
      // Gradient buckets overlap the backward pass on GPUs (non-blocking NCCL); the rest is on the critical path.
      if (m_.kind == "gpu" && part.group != "seq" && part.group != "ulysses" && part.group != "outer") {
        const double backward = (p.compute_ms() - p.optimizer_ms) * 2.0 / 3.0;
        part.ms = std::max(0.0, part.ms - backward);
      }
      p.comm_ms += part.ms;
    }
  }

  const Workload& w_;
  const MachineSpec& m_;
  const Candidate& c_;
  int ranks_;
  Placement place_;
  double oversubscription_ = 1;
  double n_ = 0;  // tokens per rank (the largest share)
};

}  // namespace

std::string Candidate::describe() const {
  std::string s = strategy;
  if (strategy == "hybrid") s += "(u=" + std::to_string(ulysses_size) + "," + hybrid_outer + ")";
  s += " " + std::to_string(data) + "x" + std::to_string(seq);
  if (checkpointing) s += " ckpt";
  return s;
}

int64_t tokens_per_sample(const Config& c) {
  if (c.data.patcher.kind != "uniform" || c.data.patcher.length > 0) return c.data.patcher.length;
  int64_t tokens = 1;
  for (int64_t d = 0; d < c.model.spatial_dims; ++d) tokens *= std::max<int64_t>(1, c.data.size / c.model.patch);
  return tokens;
}

Workload workload_from_config(const Config& c, int64_t classes) {
  Workload w;
  w.model = c.model;
  w.tokens = tokens_per_sample(c);
  SPVIT_CHECK(w.tokens > 0, "plan: the configuration has no tokens per sample (data.patcher.length, data.size)");
  w.batch = c.train.batch_size;
  w.classes = classes;
  w.decoder_flops_per_token = decoder_flops(c.model, classes);
  w.params = encoder_params(c.model) + decoder_params(c.model, classes);
  set_precision(w, c.train.precision);
  w.grad_average = c.dist.grad_average;
  w.bucket_bytes = c.dist.bucket_mb * 1e6;
  return w;
}

void set_precision(Workload& w, const std::string& precision) {
  w.precision = precision;
  w.element_bytes = precision == "fp32" ? 4.0 : 2.0;
}

DecoderCost decoder_cost(const Workload& w, double tokens) {
  const auto& md = w.model;
  DecoderCost cost;
  cost.flops = 3.0 * tokens * w.decoder_flops_per_token;
  cost.bytes = 3.0 * tokens * pixels_per_token(md) * decoder_values_per_pixel(md, w.classes) * w.element_bytes;
  return cost;
}

double encoder_model_flops(const ModelConfig& m, int64_t tokens) {
  const double N = static_cast<double>(tokens), E = static_cast<double>(m.dim);
  const double in = static_cast<double>(m.channels) * pixels_per_token(m);
  return 3.0 * (static_cast<double>(m.depth) * (24.0 * N * E * E + 4.0 * N * N * E) + 2.0 * N * in * E);
}

double collective_seconds(const std::string& op, int ranks, double bytes, const LinkSpec& link) {
  if (ranks <= 1) return 0.0;
  const double P = ranks, alpha = link.latency_us.value * 1e-6, beta = link.bandwidth_gbs.value * 1e9;
  if (op == "all_gather" || op == "reduce_scatter" || op == "all_to_all") {
    return (P - 1.0) * alpha + bytes * (P - 1.0) / P / beta;
  }
  if (op == "all_reduce") {
    // The faster of the two algorithms libraries choose between by size (NCCL's tuner and MPICH's selector alike):
    // a ring, 2(P−1) steps of one block, and a logarithmic one. Rabenseifner's stands for the latter (NCCL's double
    // binary tree has the same log P latency): reduce-scatter by recursive halving, all-gather by recursive doubling
    // over the largest power of two P' ≤ P, the other P − P' ranks folding their buffer in before and receiving the
    // result after. At 4,096 ranks and 25 µs the ring's latency alone is 0.2 s per call; the halving's 0.6 ms.
    const double ring = 2.0 * (P - 1.0) * alpha + 2.0 * bytes * (P - 1.0) / P / beta;
    const double pow2 = std::exp2(std::floor(std::log2(P)));
    double halving = 2.0 * std::log2(pow2) * alpha + 2.0 * bytes * (pow2 - 1.0) / pow2 / beta;
    if (pow2 < P) halving += 2.0 * (alpha + bytes / beta);
    return std::min(ring, halving);
  }
  if (op == "reduce" || op == "broadcast") return std::log2(P) * alpha + bytes / beta;  // pipelined tree/ring
  if (op == "send_recv") return alpha + bytes / beta;  // both directions at once (full duplex)
  SPVIT_THROW(Error, "plan: no cost model for collective '", op, "'");
}

MemoryEstimate memory_per_rank(const Workload& w, const Candidate& c, int world_ranks, bool fused_attention) {
  const auto& m = w.model;
  const double B = static_cast<double>(w.batch), E = static_cast<double>(m.dim), D = static_cast<double>(m.depth);
  const double H = static_cast<double>(m.heads), L = static_cast<double>(w.tokens), b = w.element_bytes;
  const double S = static_cast<double>(c.seq), n = std::ceil(L / S);
  MemoryEstimate e;
  e.weights_and_optimizer = (world_ranks > 1 ? 20.0 : 16.0) * w.params;
  // What each block keeps beyond its own tokens' (10 + 2r)·E values, in tokens of width E.
  double gathered = 0;
  if (c.seq > 1) {
    if (c.strategy == "lss-kv") gathered = 2.0 * L;                       // K‖V of the whole sequence
    else if (c.strategy == "lss-x") gathered = 3.0 * L;                   // x, then K and V of every token
    else if (c.strategy == "ulysses") gathered = 3.0 * L / S;             // q, k, v of L tokens for H/S heads
    else if (c.strategy == "ring") gathered = n * 4.0 / b;                // the fp32 output accumulator
    else if (c.strategy == "hybrid") {
      const double u = static_cast<double>(std::max<int64_t>(1, c.ulysses_size)), g = S / u;
      gathered = 3.0 * (L / g) / u + (c.hybrid_outer == "ring" ? (L / g) * 4.0 / b / u : 2.0 * L / u);
    }
  }
  const double block = (10.0 + 2.0 * m.mlp_ratio) * n;
  e.encoder = c.checkpointing ? B * E * b * (D * n + block + gathered) : B * D * E * b * (block + gathered);
  if (!fused_attention) {  // the explicit path keeps the softmax probabilities of this rank's queries
    const double keys = c.strategy == "ring" && c.seq > 1 ? n : L;  // ring: one block at a time, recomputed
    e.attention_scores = (c.checkpointing || c.strategy == "ring" ? 1.0 : D) * B * H * n * keys * b;
  }
  e.decoder = B * n * pixels_per_token(m) * decoder_values_per_pixel(m, w.classes) * b;
  return e;
}

Prediction predict(const Workload& w, const MachineSpec& m, const Candidate& c, int ranks) {
  return StepModel(w, m, c, ranks).run();
}

}  // namespace spvit::plan

// The performance model behind `spvit plan` (docs/scaling.md, "Performance model"): one training step's time and
// memory per rank for a strategy and grid on a machine, from
//   * compute: a roofline — the encoder's matmul FLOPs at the machine's matmul rate, the attention FLOPs at its
//     attention rate, the decoder's convolution FLOPs at its conv rate, and the element-wise traffic (LayerNorm,
//     GELU, residuals, decoder activations, the optimiser's sweep over the parameters) at its memory bandwidth;
//     ranks beyond a CPU node's cores share them (oversubscription);
//   * communication: an α–β model per collective (nccl-tests' bus-bandwidth factors: a ring algorithm moves
//     (P−1)/P of the buffer through each rank), intra-node links inside a node, the node's injection bandwidth
//     shared by its ranks across nodes; the strategies' own volumes (docs/sequence-parallel.md, "Counting bytes");
//   * memory: docs/cluster.md's formulas ("Memory per rank").
// Nothing here runs LibTorch kernels or MPI: the model is arithmetic, so it can predict 4,096 ranks on a laptop.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/plan/machine.h"

namespace spvit::plan {

// What one training step computes, per sample (from a configuration: workload_from_config).
struct Workload {
  ModelConfig model;            // the shape: E, D, H, r, P, C, decoder
  int64_t tokens = 0;           // L, tokens per sample
  int64_t batch = 1;            // B, samples per data group and step
  int64_t classes = 4;          // K
  double decoder_flops_per_token = 0;  // forward, from the decoder registry
  double params = 0;            // every trainable parameter (encoder, positional table, decoder)
  std::string precision = "fp32";      // what the matmuls run in (train.precision)
  double element_bytes = 4;     // bytes per activation element
  std::string grad_average = "flat";
  double bucket_bytes = 25e6;
};

// Builds the workload of a checked configuration. `classes`: the dataset's number of classes.
Workload workload_from_config(const Config& c, int64_t classes);
// Runs the workload in another precision: the matmul rates of that precision, 2 or 4 bytes per activation.
void set_precision(Workload& w, const std::string& precision);
// The tokens one sample of this configuration has: data.patcher.length for adaptive layouts, else the uniform
// grid over a data.size-sided sample.
int64_t tokens_per_sample(const Config& c);

// One way to run the step.
struct Candidate {
  int64_t data = 1, seq = 1;        // N_d x N_s
  std::string strategy = "lss-kv";  // model.attention
  int64_t ulysses_size = 0;         // hybrid: Ulysses group size
  std::string hybrid_outer = "lss-kv";
  bool checkpointing = false;
  std::string describe() const;     // "lss-kv 2x4 ckpt"
};

// One collective of a step (all calls of one kind on one group, summed).
struct CollectivePart {
  std::string op, group;            // e.g. all_gather on "seq"
  int ranks = 1;                    // group size
  bool across_nodes = false;
  double calls = 0, bus_bytes = 0;  // per step, per rank
  double ms = 0;
};

// docs/cluster.md's memory per rank, bytes.
struct MemoryEstimate {
  double weights_and_optimizer = 0;  // 16·N_params (+4·N_params of gradient buckets on several ranks)
  double encoder = 0, attention_scores = 0, decoder = 0;
  double activations() const { return encoder + attention_scores + decoder; }
  double total() const { return weights_and_optimizer + activations(); }
};
// `fused_attention`: the attention kernel keeps no score matrix (LibTorch >= 2.0 SDPA; every GPU build).
MemoryEstimate memory_per_rank(const Workload& w, const Candidate& c, int world_ranks, bool fused_attention);

struct Prediction {
  Candidate candidate;
  int ranks = 1, nodes = 1;
  double oversubscription = 1;      // compute slowdown from ranks sharing cores (cpu machines)
  // compute, ms per step on one rank
  double linear_ms = 0, attention_ms = 0, elementwise_ms = 0, decoder_ms = 0, optimizer_ms = 0;
  std::vector<CollectivePart> collectives;
  double comm_ms = 0, step_ms = 0;
  double samples_per_s = 0;
  double model_tflops = 0;          // the job's encoder model FLOP rate (docs/performance.md "Model FLOPs")
  MemoryEstimate memory;
  bool fits = true;                 // memory.total() <= 90% of the rank's memory
  double compute_ms() const { return linear_ms + attention_ms + elementwise_ms + decoder_ms + optimizer_ms; }
};

// The step of workload `w` on `ranks` ranks of machine `m` run as `c` (c.data * c.seq == ranks).
Prediction predict(const Workload& w, const MachineSpec& m, const Candidate& c, int ranks);

// α–β time of one collective on `ranks` ranks, `bytes` the full buffer (all_gather's output, reduce_scatter's and
// all_reduce's input, all_to_all's send buffer; send_recv: one message), in seconds. Rings, except all_reduce: the
// faster of a ring and Rabenseifner's recursive halving/doubling.
double collective_seconds(const std::string& op, int ranks, double bytes, const LinkSpec& link);

// The decoder's forward + backward over `tokens` tokens of one sample: its convolution FLOPs (3 × the registry's
// forward count) and its element-wise traffic (activations written in forward, read and their gradients written in
// backward). The step model charges them at the machine's conv rate and memory bandwidth; --calibrate inverts the
// same sum to measure the conv rate.
struct DecoderCost {
  double flops = 0, bytes = 0;
};
DecoderCost decoder_cost(const Workload& w, double tokens);

// The encoder's model FLOPs of one training step (forward + backward = 3x forward) of `tokens` tokens
// (docs/performance.md, "Model FLOPs").
double encoder_model_flops(const ModelConfig& m, int64_t tokens);

}  // namespace spvit::plan

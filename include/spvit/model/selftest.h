// The sequence-parallel exactness self-test behind `spvit selftest sp` (and the MPI test matrix).
//
// Runs the encoder plus a scalar loss on random input sharded over the grid, with double gradient averaging,
// then recomputes the same model on one process (strategy local, whole sequence, every data group's sample) and
// compares: output, loss and every parameter gradient must agree within the dtype's tolerance.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "spvit/dist/communicator.h"
#include "spvit/dist/process_grid.h"
#include "spvit/model/attention.h"

namespace spvit::model {

struct SelftestOptions {
  int64_t length = 1001;     // tokens per sample, L
  int64_t layers = 2;
  int64_t dim = 64;
  int64_t heads = 4;
  int64_t batch = 2;         // samples per data group
  int64_t patch = 4;         // tokens carry 3·patch² values
  torch::ScalarType dtype = torch::kFloat64;
  std::string strategy = "lss-kv";
  int64_t ulysses_size = 0;              // hybrid: Ulysses group size (divides the grid's seq size)
  std::string hybrid_outer = "lss-kv";  // hybrid: lss-kv or ring across the Ulysses groups
  std::string pos_encoding = "grid";  // grid | coords
  std::string grad_average = "flat";  // flat | two-stage
  double bucket_mb = 25.0;
  bool checkpointing = false;
  int64_t empty_tokens = 0;  // the last N tokens are empty adaptive slots: masked as keys, dropped from the loss
  uint64_t seed = 1234;
  // Where the distributed step runs; the single-process reference always runs on the CPU, so a CUDA run also
  // checks the GPU kernels (and the communicator's device path) against the CPU.
  torch::Device device = torch::kCPU;
};

// One layer's traffic on the sequence group (its subgroups included) and the activation bytes its attention keeps.
struct LayerAccounting {
  int64_t forward_sent = 0, forward_received = 0;    // bytes per layer: the step's counters / layers
  int64_t backward_sent = 0, backward_received = 0;  // (backward includes the checkpointing recompute)
  // Bytes one attention layer (qkv projection, strategy, output projection; no checkpointing) leaves allocated after
  // its forward besides its output: what autograd keeps for backward. Measured with LiveMemoryProbe on this rank.
  int64_t kept = 0;
};

struct SelftestResult {
  double max_rel_err_out = 0;   // encoder output vs the single-process reference (max over ranks)
  double max_rel_err_loss = 0;
  double max_rel_err_grad = 0;  // worst parameter gradient, relative to that gradient's largest entry
  double tolerance = 0;         // 1e-10 (float64) or 1e-5 (float32)
  // Everything this rank issued on the sequence communicator and its subgroups (hybrid), forward and backward
  // (backward includes the checkpointing recompute): calls and bytes sent/received per operation.
  dist::OpCounters forward, backward;
  // The same in the terms of the LSS layer.
  int64_t forward_all_gathers = 0;
  int64_t backward_all_gathers = 0;      // re-gathers of the activation-checkpointing recompute
  int64_t backward_reduce_scatters = 0;
  int64_t other_seq_collectives = 0;     // anything but all-gathers and reduce-scatters on the seq group
  int buckets = 0;
  // Per rank of the world (index = world rank): what one encoder layer moves and keeps on that rank, for the table
  // of `spvit selftest sp` and the accounting test (docs/sequence-parallel.md, "Counting bytes").
  std::vector<LayerAccounting> per_rank;
  bool passed() const {
    return max_rel_err_out <= tolerance && max_rel_err_grad <= tolerance && max_rel_err_loss <= tolerance;
  }
};

// What one attention layer (qkv projection, strategy, output projection) keeps for backward on this rank: a fresh
// layer runs forward on random tokens of this rank's segment, requiring grad as inside a model, under a
// LiveMemoryProbe; the bytes it leaves allocated besides its output. Collective on seq's group.
int64_t attention_kept_bytes(const AttentionOptions& options, const SequenceContext& seq, int64_t batch,
                             const torch::Device& device, torch::ScalarType dtype);

// 1e-10 for float64; float32 1e-5 on the CPU and 1e-4 on CUDA (fused attention and cuBLAS sum in other orders).
double selftest_tolerance(torch::ScalarType dtype, const torch::Device& device = torch::kCPU);
SelftestResult run_sequence_parallel_selftest(const dist::ProcessGrid& grid, const SelftestOptions& options);

}  // namespace spvit::model

// A machine description for the performance model (`spvit plan`, docs/scaling.md "Performance model"): what one rank
// computes per second, what its memory holds, and how fast it reaches the other ranks inside and across nodes.
//
// Every number carries its source (a vendor datasheet, a facility's user guide, or our own measurement), and the
// loader refuses a number without one: a prediction is only as good as the numbers under it, and a reader must be
// able to check each. Files live in machines/*.yaml; `spvit plan --calibrate` writes one from microbenchmarks.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace spvit::plan {

// A number and where it comes from.
struct Sourced {
  double value = 0;
  std::string source;
};

// One kind of link, as seen by one rank during a collective in which every rank takes part: the start-up latency
// α and the bandwidth β per rank and direction (nccl-tests' bus bandwidth: what a ring algorithm achieves).
struct LinkSpec {
  Sourced latency_us;      // α, per message
  Sourced bandwidth_gbs;   // β, GB/s (1e9 bytes) per rank and direction
};

// A rate that depends on the size of the work, as points (size, TFLOP/s) sorted by size: read by linear
// interpolation in log(size), held at the end points beyond them. On a CPU the explicit attention kernel slows as its
// score matrix leaves the caches (docs/scaling.md, "Performance model"), which one number cannot say.
struct RateCurve {
  std::vector<std::pair<double, double>> points;
  std::string source;
  double at(double size) const;
};

struct MachineSpec {
  std::string name, description;
  std::string kind = "gpu";      // gpu: one rank per device; cpu: ranks share the node's cores (oversubscription)
  Sourced ranks_per_node;        // devices (gpu) or the ranks a node runs at full speed (cpu: cores / threads)
  Sourced cores_per_node;        // cpu: physical cores; ranks·threads beyond them share cores
  Sourced threads_per_rank;      // cpu: the threads each rank computes with (OMP_NUM_THREADS)
  Sourced memory_gib;            // per rank: device memory (gpu) or host memory / ranks (cpu)
  Sourced memory_bandwidth_gbs;  // per rank: what element-wise kernels achieve (GPUs: ~ the copy bandwidth)
  // Achieved rates, TFLOP/s per rank, by precision ("fp32", "bf16", "fp16"): dense matmul of the encoder's linear
  // layers, attention forward + backward (the same kernel the encoder calls), and the decoder's convolutions.
  std::map<std::string, Sourced> matmul_tflops, attention_tflops, conv_tflops;
  // Optional, by precision: the attention rate against the score matrix of one call (batch × heads × queries ×
  // keys). Where present it replaces attention_tflops (spvit plan --calibrate measures it on CPUs).
  std::map<std::string, RateCurve> attention_curve;
  // Optional: the decoder's fixed time per call beyond its FLOPs and bytes (LibTorch's per-op costs; 0 if absent).
  Sourced decoder_overhead_ms;
  LinkSpec intra_node;           // between ranks of one node (NVLink, Infinity Fabric, shared memory)
  LinkSpec inter_node;           // across nodes: β is the node's injection bandwidth / ranks_per_node

  int ranks_per_node_int() const;
  // The rate for a precision, or a clear error naming the file's missing key.
  const Sourced& rate(const std::map<std::string, Sourced>& rates, const std::string& precision,
                      const char* key) const;
  // TFLOP/s of attention calls whose score matrix holds `score_elements` values: attention_curve where the file
  // has one for the precision, else attention_tflops.
  double attention_rate(const std::string& precision, double score_elements) const;
};

// Reads and checks a machine file (every number present, positive and sourced). Errors name the file and the key.
MachineSpec load_machine(const std::string& path);
// The YAML text of a machine (what --calibrate writes): the format load_machine reads.
std::string machine_yaml(const MachineSpec& m);

}  // namespace spvit::plan

// The sequence-parallel strategies side by side (run with mpirun -np N; N is the sequence group): one encoder block
// (LayerNorm, attention, MLP) forward + backward on this rank's L/N tokens, for each strategy and length L, in one
// invocation so that every row shares the same machine state. Per row:
//   - time: median over --iters repetitions (after one warm-up), each ended by a barrier, the slowest rank's median;
//   - bytes sent and received per rank and step (max over ranks), from the communicator's counters
//     (nccl-tests definitions, docs/sequence-parallel.md "Counting bytes");
//   - bytes the block's attention keeps for backward on the rank that keeps most (LiveMemoryProbe).
// Times are relative to lss-kv in the same invocation. With more ranks than cores the run is oversubscribed and the
// header says so: such times show the cost of compute and copies, not of a network.
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/core/timer.h"
#include "spvit/dist/mpi_runtime.h"
#include "spvit/dist/process_grid.h"
#include "spvit/dist/sequence_shard.h"
#include "spvit/model/selftest.h"
#include "spvit/model/vit_block.h"

using namespace spvit;

namespace {

struct Args {
  std::vector<int64_t> lengths = {1024, 2048, 4096};
  int64_t dim = 128, heads = 4, batch = 1;
  int iters = 5;
};

struct Case {
  std::string label;  // "hybrid-ring" etc.
  model::AttentionOptions attention;
};

struct Row {
  double us = 0;
  int64_t sent = 0, received = 0, kept = 0;
};

double max_over(dist::Communicator& comm, double value) {
  auto t = torch::full({1}, value, torch::kFloat64);
  comm.all_reduce(t, dist::ReduceOp::Max)->wait();
  return t.item<double>();
}

Row measure(dist::Communicator& comm, const dist::CommPtr& seq_comm, const Args& a, int64_t length,
            const model::AttentionOptions& attention) {
  torch::manual_seed(7);
  model::ViTBlock block(model::BlockOptions{attention, 4.0});
  const auto shard = dist::SequenceShard::even(length, seq_comm->size(), seq_comm->rank());
  const auto seq = shard.context(seq_comm);
  auto x = torch::randn({a.batch, shard.local_length(), a.dim}).requires_grad_();
  auto step = [&] {
    block->zero_grad();
    block->forward(x, seq).sum().backward();
  };
  step();  // warm-up (and the hybrid subgroups' creation)
  std::vector<double> samples;
  for (int i = 0; i < a.iters; ++i) {
    comm.barrier()->wait();
    Stopwatch watch;
    step();
    comm.barrier()->wait();
    samples.push_back(watch.seconds() * 1e6);
  }
  std::nth_element(samples.begin(), samples.begin() + a.iters / 2, samples.end());
  Row row;
  row.us = max_over(comm, samples[static_cast<size_t>(a.iters / 2)]);
  seq_comm->reset_counters();
  step();
  const auto c = seq_comm->counters_with_subgroups();
  row.sent = static_cast<int64_t>(max_over(comm, static_cast<double>(c.total_sent())));
  row.received = static_cast<int64_t>(max_over(comm, static_cast<double>(c.total_received())));
  const int64_t kept = model::attention_kept_bytes(attention, seq, a.batch, torch::kCPU, torch::kFloat32);
  row.kept = static_cast<int64_t>(max_over(comm, static_cast<double>(kept)));
  return row;
}

std::vector<int64_t> parse_list(const std::string& text) {
  std::vector<int64_t> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) values.push_back(std::stoll(item));
  return values;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--lengths") a.lengths = parse_list(value);
    else if (key == "--dim") a.dim = std::stoll(value);
    else if (key == "--heads") a.heads = std::stoll(value);
    else if (key == "--batch") a.batch = std::stoll(value);
    else if (key == "--iters") a.iters = std::stoi(value);
    else SPVIT_THROW(ConfigError, "bench_strategies: unknown option ", key,
                     " (--lengths L1,L2,... --dim E --heads H --batch B --iters N)");
  }
  SPVIT_CHECK(a.dim > 0 && a.heads > 0 && a.dim % a.heads == 0 && a.iters > 0 && a.batch > 0,
              "bench_strategies: --dim must be a positive multiple of --heads; --iters, --batch positive");
  return a;
}

// Every strategy that shards a sequence of n ranks; hybrid with Ulysses groups of 2 when n >= 4 and even.
std::vector<Case> cases(const Args& a, int n) {
  using model::AttentionStrategy;
  const model::AttentionOptions base{a.dim, a.heads, AttentionStrategy::LssKv, true, 0, AttentionStrategy::LssKv};
  std::vector<Case> out;
  for (auto [label, strategy] : std::vector<std::pair<std::string, AttentionStrategy>>{
           {"lss-kv", AttentionStrategy::LssKv}, {"lss-x", AttentionStrategy::LssX},
           {"ulysses", AttentionStrategy::Ulysses}, {"ring", AttentionStrategy::Ring}}) {
    auto o = base;
    o.strategy = strategy;
    out.push_back({label, o});
  }
  if (n >= 4 && n % 2 == 0) {
    for (auto [label, outer] : std::vector<std::pair<std::string, AttentionStrategy>>{
             {"hybrid-lss-kv (U=2)", AttentionStrategy::LssKv}, {"hybrid-ring (U=2)", AttentionStrategy::Ring}}) {
      auto o = base;
      o.strategy = AttentionStrategy::Hybrid;
      o.ulysses_size = 2;
      o.hybrid_outer = outer;
      out.push_back({label, o});
    }
  }
  return out;
}

double mib(int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

}  // namespace

int main(int argc, char** argv) {
  dist::MpiRuntime mpi(&argc, &argv);
  log::init(mpi.world_rank(), mpi.world_size(), "warn");
  try {
    const Args a = parse(argc, argv);
    auto grid = dist::ProcessGrid::create({1, mpi.world_size()}, 600);
    auto& world = *grid.world();
    torch::set_num_threads(1);
    const int n = grid.seq_size();
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    if (world.rank() == 0) {
      std::printf("# one encoder block forward+backward per strategy: N_s=%d ranks%s, E=%lld, H=%lld, B=%lld, "
                  "float32, CPU (1 thread per rank), median of %d\n",
                  n, n > static_cast<int>(cores) ? (" (OVERSUBSCRIBED on " + std::to_string(cores) + " cores)").c_str() : "",
                  static_cast<long long>(a.dim), static_cast<long long>(a.heads), static_cast<long long>(a.batch),
                  a.iters);
      std::printf("| L | strategy | fwd+bwd ms | time / lss-kv | sent MiB/rank | received MiB/rank | attention kept "
                  "MiB/rank |\n|---|---|---|---|---|---|---|\n");
      std::fflush(stdout);
    }
    for (const int64_t length : a.lengths) {
      SPVIT_CHECK(length >= n, "bench_strategies: L = ", length, " is shorter than the ", n, " ranks");
      double baseline = 0;
      for (const auto& c : cases(a, n)) {
        const Row row = measure(world, grid.seq(), a, length, c.attention);
        if (baseline == 0) baseline = row.us;
        if (world.rank() == 0) {
          std::printf("| %lld | %s | %.1f | %.2f | %.2f | %.2f | %.1f |\n", static_cast<long long>(length),
                      c.label.c_str(), row.us / 1e3, row.us / baseline, mib(row.sent), mib(row.received),
                      mib(row.kept));
          std::fflush(stdout);
        }
      }
    }
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    dist::abort_world(3);
  }
  return 0;
}

// Fused K‖V communication versus separate collectives, over message sizes (run with mpirun -np N).
//
// One LSS layer moves K and V: fused = pack [k ‖ v] into one buffer, ONE all-gather, and in backward ONE
// reduce-scatter of [dK ‖ dV]; unfused = an all-gather of K and one of V, then a reduce-scatter of dK and one of
// dV. `size` is the gathered K‖V bytes (the all-gather output), as nccl-tests reports all_gather sizes.
// Reported per direction with nccl-tests' definitions: algbw = size / time, busbw = algbw · (n-1)/n.
// Data is verified once per size before timing.
#include "spvit/dist/mpi.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/core/timer.h"
#include "spvit/dist/mpi_runtime.h"
#include "spvit/dist/process_grid.h"

using namespace spvit;
using dist::Communicator;

namespace {

struct Timing {
  double fused_fwd_us, fused_bwd_us, unfused_fwd_us, unfused_bwd_us;
};

// Median of `iters` timed repetitions of fn (after warm-up), synchronised across ranks, max over ranks.
template <typename Fn>
double time_us(Communicator& comm, int iters, Fn fn) {
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> samples;
  for (int i = 0; i < iters; ++i) {
    comm.barrier()->wait();
    Stopwatch watch;
    fn();
    samples.push_back(watch.seconds() * 1e6);
  }
  std::nth_element(samples.begin(), samples.begin() + iters / 2, samples.end());
  auto t = torch::full({1}, samples[iters / 2], torch::kFloat64);
  comm.all_reduce(t, dist::ReduceOp::Max)->wait();
  return t.item<double>();
}

Timing measure(Communicator& comm, int64_t total_bytes, int iters) {
  const int n = comm.size();
  // Per rank: L_s rows of K and of V, float32. total = 2 · L · E · 4 bytes.
  const int64_t half_elems_total = std::max<int64_t>(total_bytes / 8, n);
  const int64_t local = half_elems_total / n;  // elements of k_s (and of v_s) per rank
  auto k = torch::randn({local});
  auto v = torch::randn({local});
  auto packed = torch::empty({local, 2});
  auto gathered = torch::empty({n * local, 2});
  auto gk = torch::empty({n * local}), gv = torch::empty({n * local});
  auto dkv = torch::randn({n * local, 2});
  auto dk = torch::randn({n * local}), dv = torch::randn({n * local});
  auto out_kv = torch::empty({local, 2}), out_k = torch::empty({local}), out_v = torch::empty({local});
  const std::vector<int64_t> counts2(n, 2 * local), counts1(n, local);

  // Verify once: the fused gather returns every rank's k and v, identical to the unfused pair.
  packed.select(1, 0).copy_(k);
  packed.select(1, 1).copy_(v);
  comm.all_gather(packed, gathered, counts2)->wait();
  comm.all_gather(k, gk, counts1)->wait();
  comm.all_gather(v, gv, counts1)->wait();
  SPVIT_CHECK(torch::equal(gathered.select(1, 0), gk) && torch::equal(gathered.select(1, 1), gv),
              "fused and unfused all-gathers disagree");

  Timing t{};
  t.fused_fwd_us = time_us(comm, iters, [&] {
    packed.select(1, 0).copy_(k);  // the pack is part of the fused path's cost
    packed.select(1, 1).copy_(v);
    comm.all_gather(packed, gathered, counts2)->wait();
  });
  t.fused_bwd_us = time_us(comm, iters, [&] { comm.reduce_scatter(dkv, out_kv, counts2)->wait(); });
  t.unfused_fwd_us = time_us(comm, iters, [&] {
    auto a = comm.all_gather(k, gk, counts1);
    auto b = comm.all_gather(v, gv, counts1);
    a->wait();
    b->wait();
  });
  t.unfused_bwd_us = time_us(comm, iters, [&] {
    auto a = comm.reduce_scatter(dk, out_k, counts1);
    auto b = comm.reduce_scatter(dv, out_v, counts1);
    a->wait();
    b->wait();
  });
  return t;
}

std::string human(int64_t bytes) {
  char buf[32];
  if (bytes >= (1 << 20)) std::snprintf(buf, sizeof buf, "%lld MiB", static_cast<long long>(bytes >> 20));
  else std::snprintf(buf, sizeof buf, "%lld KiB", static_cast<long long>(bytes >> 10));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  dist::MpiRuntime mpi(&argc, &argv);
  log::init(mpi.world_rank(), mpi.world_size(), "warn");
  int64_t max_bytes = int64_t{64} << 20;
  int iters = 20;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--max-bytes") max_bytes = std::stoll(argv[i + 1]);
    if (std::string(argv[i]) == "--iters") iters = std::stoi(argv[i + 1]);
  }
  try {
    auto grid = dist::ProcessGrid::create({1, mpi.world_size()}, 300);
    auto& comm = *grid.seq();
    torch::set_num_threads(1);
    const int n = comm.size();
    const double bus = n > 1 ? double(n - 1) / n : 1.0;
    if (comm.rank() == 0) {
      std::printf("# fused K||V all-gather + reduce-scatter vs separate K and V collectives, %d ranks, float32\n", n);
      std::printf("| size | fused fwd us | fused bwd us | unfused fwd us | unfused bwd us | fused algbw GB/s | fused "
                  "busbw GB/s | unfused busbw GB/s | unfused/fused time |\n");
      std::printf("|---|---|---|---|---|---|---|---|---|\n");
    }
    for (int64_t bytes = 4096; bytes <= max_bytes; bytes *= 4) {
      const int reps = bytes >= (16 << 20) ? std::max(5, iters / 4) : iters;
      const Timing t = measure(comm, bytes, reps);
      const double fused = t.fused_fwd_us + t.fused_bwd_us, unfused = t.unfused_fwd_us + t.unfused_bwd_us;
      const double algbw = bytes / (t.fused_fwd_us * 1e3);  // GB/s = bytes / (us * 1e3)
      if (comm.rank() == 0) {
        std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f |\n", human(bytes).c_str(),
                    t.fused_fwd_us, t.fused_bwd_us, t.unfused_fwd_us, t.unfused_bwd_us, algbw, algbw * bus,
                    bytes / (t.unfused_fwd_us * 1e3) * bus, unfused / fused);
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    dist::abort_world(3);
  }
  return 0;
}

// `spvit bench collectives`: the communicator's collectives over message sizes, as nccl-tests measures them, on the
// backend the training uses (MPI, or NCCL on GPUs). Per operation and size: time per call (the mean over --iters
// back-to-back calls, each waited, slowest rank), algbw = size / time and busbw = algbw · factor with nccl-tests'
// definitions of size and factor (docs/benchmarks.md, "Collectives"). Every operation's result is verified against
// the value it must have before it is timed; a wrong result ends the run with an error, not a number.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app_context.h"
#include "bench_commands.h"
#include "spvit/core/device.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/core/registry.h"
#include "spvit/core/timer.h"

namespace spvit::app {
namespace {

struct CollectivesArgs {
  std::vector<std::string> ops = {"all_gather", "reduce_scatter", "all_reduce", "all_to_all", "send_recv"};
  std::string min_size = "1K", max_size = "16M";  // bytes, with nccl-tests' K/M/G suffixes (powers of 1024)
  int64_t min_bytes = 0, max_bytes = 0;
  int64_t factor = 4;
  int iters = 20, warmup = 5;
  std::string dtype = "float32", device = "cpu", backend = "auto", out;
  double timeout_s = 120;
};

// "64", "1K", "16M", "2G" -> bytes (K = 1024, as nccl-tests reads -b/-e).
int64_t parse_size(const std::string& text) {
  size_t used = 0;
  long long value = -1;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string suffix = text.substr(used);
  int64_t unit = 0;
  if (suffix.empty()) unit = 1;
  else if (suffix == "K" || suffix == "k") unit = int64_t{1} << 10;
  else if (suffix == "M" || suffix == "m") unit = int64_t{1} << 20;
  else if (suffix == "G" || suffix == "g") unit = int64_t{1} << 30;
  if (used == 0 || unit == 0 || value <= 0) {
    SPVIT_THROW(ConfigError, "bench collectives: size '", text, "' must be a positive number of bytes, optionally "
                "with K, M or G (e.g. 64K)");
  }
  return static_cast<int64_t>(value) * unit;
}

const std::vector<std::string>& op_names() {
  static const std::vector<std::string> names = {"all_gather", "reduce_scatter", "all_reduce", "all_to_all",
                                                 "send_recv"};
  return names;
}

torch::ScalarType bench_dtype(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "float64") return torch::kFloat64;
  if (name == "bfloat16") return torch::kBFloat16;
  return torch::kFloat16;
}

// nccl-tests' bus-bandwidth factor: what each rank's links carry relative to `size` in a ring algorithm.
double bus_factor(const std::string& op, int n) {
  if (n <= 1) return op == "send_recv" ? 1.0 : 0.0;
  if (op == "all_reduce") return 2.0 * (n - 1) / n;
  if (op == "send_recv") return 1.0;
  return static_cast<double>(n - 1) / n;  // all_gather, reduce_scatter, all_to_all
}

// One operation at one size, with buffers whose contents make the result predictable: rank r contributes small
// integers (exact in every dtype), so the check is an exact comparison.
class Case {
 public:
  Case(dist::Communicator& comm, const std::string& op, int64_t size_bytes, torch::ScalarType dtype,
       const torch::Device& device)
      : comm_(comm), op_(op) {
    const int n = comm.size(), r = comm.rank();
    const auto element = static_cast<int64_t>(c10::elementSize(dtype));
    // nccl-tests' size: all_gather the output, reduce_scatter the input, all_to_all the per-rank buffer,
    // all_reduce the buffer, send_recv the message. The per-rank count is rounded down to a multiple of n.
    count_ = std::max<int64_t>(n, size_bytes / element / n * n);
    const int64_t block = count_ / n;
    const auto opts = torch::TensorOptions().dtype(dtype).device(device);
    const auto pattern = [&](int rank, int64_t numel) {  // rank + 1 + (i mod 3): small exact integers
      return (torch::arange(numel, torch::kLong).remainder(3) + (rank + 1)).to(opts);
    };
    if (op == "all_gather") {
      input_ = pattern(r, block);
      output_ = torch::zeros({count_}, opts);
      std::vector<torch::Tensor> parts;
      for (int q = 0; q < n; ++q) parts.push_back(pattern(q, block));
      expected_ = torch::cat(parts);
    } else if (op == "reduce_scatter") {
      input_ = pattern(r, count_);
      output_ = torch::zeros({block}, opts);
      // Σ_q (q + 1 + (i mod 3)) over the ranks, for this rank's block of indices.
      const auto i = torch::arange(r * block, (r + 1) * block, torch::kLong).remainder(3);
      expected_ = (i * n + n * (n + 1) / 2).to(opts);
    } else if (op == "all_reduce") {
      input_ = pattern(r, count_);
      output_ = input_.clone();
      expected_ = (torch::arange(count_, torch::kLong).remainder(3) * n + n * (n + 1) / 2).to(opts);
    } else if (op == "all_to_all") {
      // Block q of rank r's input is r·n + q + 1 (+ i mod 3): rank r receives q·n + r + 1 from each q.
      std::vector<torch::Tensor> in, want;
      for (int q = 0; q < n; ++q) {
        in.push_back((torch::arange(block, torch::kLong).remainder(3) + (r * n + q + 1)).to(opts));
        want.push_back((torch::arange(block, torch::kLong).remainder(3) + (q * n + r + 1)).to(opts));
      }
      input_ = torch::cat(in);
      output_ = torch::zeros({count_}, opts);
      expected_ = torch::cat(want);
    } else {  // send_recv: the ring shift of the ring strategy, rank r → r + 1
      count_ = std::max<int64_t>(1, size_bytes / element);
      input_ = pattern(r, count_);
      output_ = torch::zeros({count_}, opts);
      expected_ = pattern((r + n - 1) % n, count_);
    }
    size_bytes_ = count_ * element;
  }

  void run_once() {
    const int n = comm_.size(), r = comm_.rank();
    const std::vector<int64_t> blocks(static_cast<size_t>(n), count_ / n);
    dist::WorkPtr work;
    if (op_ == "all_gather") work = comm_.all_gather(input_, output_, blocks);
    else if (op_ == "reduce_scatter") work = comm_.reduce_scatter(input_, output_, blocks);
    else if (op_ == "all_reduce") {
      output_.copy_(input_);  // in place: restore the input (part of the measured call, as a copy of `size` bytes)
      work = comm_.all_reduce(output_);
    } else if (op_ == "all_to_all") work = comm_.all_to_all(input_, output_, blocks, blocks);
    else work = comm_.send_recv(input_, (r + 1) % n, output_, (r + n - 1) % n, /*tag=*/601);
    work->wait();
  }

  // Runs once and compares with the expected result on every rank; throws naming the op and size otherwise.
  void verify() {
    output_.zero_();
    run_once();
    const bool ok = torch::equal(output_.cpu(), expected_.cpu());
    auto flag = torch::full({1}, ok ? 0.0 : 1.0, torch::kFloat64);
    comm_.all_reduce(flag, dist::ReduceOp::Max)->wait();
    SPVIT_CHECK(flag.item<double>() == 0.0, "bench collectives: ", op_, " of ", size_bytes_, " bytes on '",
                comm_.name(), "' (", comm_.size(), " ranks) gave a wrong result: no time is reported for a "
                "communicator that moves the wrong data");
  }

  int64_t size_bytes() const { return size_bytes_; }
  int64_t count() const { return count_; }

 private:
  dist::Communicator& comm_;
  std::string op_;
  int64_t count_ = 0, size_bytes_ = 0;
  torch::Tensor input_, output_, expected_;
};

// Mean seconds per call over `iters` back-to-back waited calls; the slowest rank's.
double time_per_call(dist::Communicator& comm, Case& c, const torch::Device& device, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) c.run_once();
  synchronize(device);
  comm.barrier()->wait();
  Stopwatch watch;
  for (int i = 0; i < iters; ++i) c.run_once();
  synchronize(device);
  auto t = torch::full({1}, watch.seconds() / iters, torch::kFloat64);
  comm.all_reduce(t, dist::ReduceOp::Max)->wait();
  return t.item<double>();
}

}  // namespace

double measure_collective_seconds(dist::Communicator& comm, const std::string& op, int64_t bytes,
                                  const torch::Device& device, int warmup, int iters) {
  Case c(comm, op, bytes, torch::kFloat32, device);
  c.verify();
  return time_per_call(comm, c, device, warmup, iters);
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

namespace {

int run_collectives(CollectivesArgs a, const AppContext& ctx) {
  a.min_bytes = parse_size(a.min_size);
  a.max_bytes = parse_size(a.max_size);
  if (a.max_bytes < a.min_bytes || a.factor < 2) {
    SPVIT_THROW(ConfigError, "bench collectives: need --min-bytes <= --max-bytes (got ", a.min_bytes, " and ",
                a.max_bytes, ") and --factor >= 2 (got ", a.factor, ")");
  }
  auto grid = make_grid({1, ctx.world_size}, a.timeout_s, a.device, a.backend);
  const torch::Device device = select_device(a.device, grid.local_rank());
  auto& comm = *grid.world();
  const int n = comm.size();
  const auto dtype = bench_dtype(a.dtype);
  if (ctx.world_rank == 0) {
    std::printf("# spvit bench collectives: %d ranks, %s communicators, %s on %s; time = mean of %d calls (slowest "
                "rank), algbw = size/time, busbw = algbw x factor (nccl-tests)\n",
                n, grid.backend().c_str(), a.dtype.c_str(), device.str().c_str(), a.iters);
    std::printf("%16s %14s %12s %12s %12s %8s\n", "op", "size (B)", "time (us)", "algbw GB/s", "busbw GB/s",
                "check");
  }
  std::ofstream out;
  if (ctx.world_rank == 0 && !a.out.empty()) {
    out.open(a.out, std::ios::app);
    SPVIT_CHECK(out.good(), "bench collectives: cannot open --out '", a.out, "' for appending");
  }
  for (const auto& op : a.ops) {
    for (int64_t bytes = a.min_bytes; bytes <= a.max_bytes; bytes *= a.factor) {
      Case c(comm, op, bytes, dtype, device);
      c.verify();
      const double seconds = time_per_call(comm, c, device, a.warmup, a.iters);
      const double algbw = static_cast<double>(c.size_bytes()) / seconds / 1e9;
      const double busbw = algbw * bus_factor(op, n);
      if (ctx.world_rank != 0) continue;
      std::printf("%16s %14lld %12.2f %12.3f %12.3f %8s\n", op.c_str(), static_cast<long long>(c.size_bytes()),
                  seconds * 1e6, algbw, busbw, "ok");
      std::fflush(stdout);
      if (out.is_open()) {
        nlohmann::json row = {{"bench", "collectives"}, {"op", op}, {"size_bytes", c.size_bytes()},
                              {"count", c.count()}, {"dtype", a.dtype}, {"ranks", n},
                              {"backend", grid.backend()}, {"device", device.str()}, {"time_us", seconds * 1e6},
                              {"algbw_gbps", algbw}, {"busbw_gbps", busbw}, {"bus_factor", bus_factor(op, n)},
                              {"iters", a.iters}, {"verified", true}, {"machine", host_name()},
                              {"date", utc_now()}};
        out << row.dump() << "\n";
        out.flush();
      }
    }
  }
  return 0;
}

}  // namespace

void add_bench_collectives_command(CLI::App& bench, AppContext& ctx) {
  auto* cmd = bench.add_subcommand("collectives", "The communicator's collectives over message sizes, nccl-tests "
                                                  "style (time, algbw, busbw), each verified before it is timed");
  auto a = std::make_shared<CollectivesArgs>();
  cmd->add_option("--ops", a->ops, "operations, comma-separated: " + join_names(op_names()))
      ->delimiter(',')
      ->check(CLI::IsMember(op_names()));
  cmd->add_option("--min-bytes,-b", a->min_size, "smallest size in bytes, K/M/G allowed (nccl-tests -b)")
      ->default_val(a->min_size);
  cmd->add_option("--max-bytes,-e", a->max_size, "largest size in bytes, K/M/G allowed (nccl-tests -e)")
      ->default_val(a->max_size);
  cmd->add_option("--factor,-f", a->factor, "size multiplier between rows (nccl-tests -f)")->default_val(a->factor);
  cmd->add_option("--iters,-n", a->iters, "timed calls per size")->default_val(a->iters)->check(CLI::PositiveNumber);
  cmd->add_option("--warmup,-w", a->warmup, "untimed calls first")->default_val(a->warmup)
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--dtype", a->dtype, "element type")
      ->default_val(a->dtype)
      ->check(CLI::IsMember({"float32", "float64", "bfloat16", "float16"}));
  cmd->add_option("--device", a->device, "cpu, cuda or auto")->default_val(a->device)
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  cmd->add_option("--backend", a->backend, "auto (nccl on GPUs when built in), mpi or nccl")
      ->default_val(a->backend)
      ->check(CLI::IsMember({"auto", "mpi", "nccl"}));
  cmd->add_option("--timeout", a->timeout_s, "seconds before a stuck collective ends the run")
      ->default_val(a->timeout_s);
  cmd->add_option("--out", a->out, "append one JSON line per operation and size to this file");
  cmd->callback([&ctx, a]() { ctx.run = [&ctx, a]() { return run_collectives(*a, ctx); }; });
}

}  // namespace spvit::app

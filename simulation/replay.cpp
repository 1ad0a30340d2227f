// SimGrid SMPI replay of one encoder layer of spvit (docs/scaling.md, "Simulation"). Built with Debian's smpicxx
// (libsimgrid-dev), without LibTorch: scripts/simulation/simulate.py builds and runs it.
//
// Input: two `spvit bench step --tokens N --depth 1 --trace FILE` traces of the same strategy and model at two
// sequence-group sizes G (any tokens; L divisible by G). Each trace is the strategy's own calls, in order. The replay
//   1. keeps the sequence group's calls of the encoder's forward and backward (the trace labels each call with its
//      phase) and compresses them into runs of identical consecutive calls;
//   2. checks that every trace has the same runs, and fits each run's call count, and its bytes per token of a rank,
//      as a + b·G (exact for the strategies' volumes: an all-gather's output is G blocks of a rank's tokens, a ring
//      pass G − 1 or G shifts of one block, an all-to-all buffer one block) — a trace at a third G checks the fit
//      (--check);
//   3. replays the runs at the target G on every sequence group of the simulated machine (MPI_Comm_split of
//      consecutive ranks, as spvit places them) with SMPI's own collective algorithms, injecting compute between
//      calls at the roofline rate given on the command line (smpi_execute_flops on 1 GFLOP/s cores): the layer's forward compute split evenly
//      before and between the forward calls, backward (2x) likewise;
//   4. times the gradient all-reduce of a depth-D model once (fp32, extrapolated from the trace's depth-1 bytes by
//      the parameters of D − 1 more blocks) and reports step = D · layer + that all-reduce.
// --part layer replays only steps 1-3 and --part grad only step 4 (default: both). The layer's calls never leave a
// sequence group, so on a platform whose switches give every group of whole switches links of its own, one such
// block of ranks replays the layer exactly as the whole machine would, while the gradient all-reduce spans every
// rank: simulate.py runs the two parts separately at 4,096 ranks (docs/scaling.md, "Simulation").
// Buffers are SMPI_SHARED_MALLOC'd and reductions use a no-op operator. Every message is --bytes-scale times smaller
// than spvit's, on a platform whose bandwidths are the same factor lower (scripts/simulation/platforms.py --scale):
// under SimGrid's max-min flow model without size-dependent factors (network/model:CM02) the times are the same,
// and SMPI's collective algorithms, which allocate real temporary buffers per rank, fit in the simulator's memory.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

struct Run {
  std::string op, comm, phase;
  double count = 0, bytes = 0;  // calls, bytes per call (nccl-tests' size)
  double group = 0;             // the communicator's size in this trace
};

struct Trace {
  nlohmann::json head;
  std::vector<Run> runs;
  double grad_bytes = 0;  // the gradient all-reduce's bytes, all buckets
  double group = 0;       // the sequence group's size
  double n = 0;           // tokens per rank
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "replay: %s\n", what.c_str());
  MPI_Abort(MPI_COMM_WORLD, 2);
  std::exit(2);
}

bool sequence_comm(const std::string& comm) {
  return (comm == "seq" || comm.rfind("seq/", 0) == 0) && comm.find(".grads") == std::string::npos;
}

Trace load(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read trace '" + path + "'");
  Trace t;
  std::string line;
  if (!std::getline(in, line)) fail("'" + path + "' is empty");
  t.head = nlohmann::json::parse(line);
  if (!t.head.contains("trace_events")) fail("'" + path + "' does not start with a spvit bench step --trace header");
  if (t.head["attention"] == "hybrid") fail("hybrid traces are not replayed yet (two nested groups)");
  while (std::getline(in, line)) {
    const auto e = nlohmann::json::parse(line);
    const std::string comm = e["comm"], op = e["op"], phase = e["phase"];
    if (op == "all_reduce" && comm == "world.grads") t.grad_bytes += e["bytes"].get<double>();
    const bool layer = phase == "encoder forward" || phase == "encoder backward";
    if (phase == "model forward") fail("'" + path + "' does not separate the encoder's forward calls (a tile model)");
    if (!layer || !sequence_comm(comm)) continue;
    const double bytes = e["bytes"].get<double>();
    if (!t.runs.empty() && t.runs.back().op == op && t.runs.back().bytes == bytes && t.runs.back().phase == phase) {
      t.runs.back().count += 1;
    } else {
      t.runs.push_back({op, comm, phase, 1, bytes, e["ranks"].get<double>()});
    }
    t.group = e["ranks"].get<double>();
  }
  t.n = t.head["tokens"].get<double>() / t.group;
  if (t.head["model"]["depth"] != 1) fail("'" + path + "' has depth " + t.head["model"]["depth"].dump() +
                                          ": record one layer (--depth 1); the replay extrapolates by depth");
  return t;
}

// The runs at group size G and n tokens per rank from traces a and b: count and bytes per token as a + b·G.
std::vector<Run> fit(const Trace& a, const Trace& b, double G, double n) {
  if (a.runs.size() != b.runs.size()) {
    fail("the traces have different call structures (" + std::to_string(a.runs.size()) + " vs " +
         std::to_string(b.runs.size()) + " runs): same strategy and model, two group sizes?");
  }
  std::vector<Run> out;
  for (size_t i = 0; i < a.runs.size(); ++i) {
    const auto &x = a.runs[i], &y = b.runs[i];
    if (x.op != y.op || x.phase != y.phase) fail("run " + std::to_string(i) + " differs: " + x.op + " vs " + y.op);
    Run r = x;
    const double span = y.group - x.group;
    auto line = [&](double u, double v) { return span == 0 ? u : u + (v - u) * (G - x.group) / span; };
    r.count = std::round(line(x.count, y.count));
    r.bytes = std::max(0.0, line(x.bytes / a.n, y.bytes / b.n) * n);
    r.group = G;
    out.push_back(r);
  }
  return out;
}

void noop(void*, void*, int*, MPI_Datatype*) {}  // the bytes move; nobody needs their sum

struct Rates {
  double matmul = 0, attention = 0, bandwidth = 0;  // FLOP/s, FLOP/s, B/s
};

// One layer's compute per rank (src/plan/step_model.cpp's roofline): forward seconds.
double forward_seconds(const nlohmann::json& head, double tokens_per_rank, double L, const Rates& r) {
  const auto& m = head["model"];
  const double E = m["dim"], ratio = m["mlp_ratio"], B = head["batch"];
  const double b = head["precision"] == "fp32" ? 4.0 : 2.0;
  const double n = tokens_per_rank;
  double linear = (8.0 + 4.0 * ratio) * B * n * E * E;
  if (head["attention"] == "lss-x") linear += 4.0 * B * (L - n) * E * E;
  return linear / r.matmul + 4.0 * B * n * L * E / r.attention + (10.0 + 2.0 * ratio) * B * n * E * b / r.bandwidth;
}

void issue(const Run& run, MPI_Comm comm, char* buf, MPI_Op sum) {
  const int G = static_cast<int>(run.group);
  const long long bytes = static_cast<long long>(run.bytes);
  if (run.op == "all_gather") {
    MPI_Allgather(buf, static_cast<int>(bytes / G), MPI_BYTE, buf, static_cast<int>(bytes / G), MPI_BYTE, comm);
  } else if (run.op == "reduce_scatter") {
    MPI_Reduce_scatter_block(buf, buf, static_cast<int>(bytes / G / 4), MPI_FLOAT, sum, comm);
  } else if (run.op == "all_to_all") {
    MPI_Alltoall(buf, static_cast<int>(bytes / G), MPI_BYTE, buf, static_cast<int>(bytes / G), MPI_BYTE, comm);
  } else if (run.op == "send_recv") {
    int r = 0;
    MPI_Comm_rank(comm, &r);
    MPI_Sendrecv(buf, static_cast<int>(bytes), MPI_BYTE, (r + 1) % G, 7, buf, static_cast<int>(bytes), MPI_BYTE,
                 (r + G - 1) % G, 7, comm, MPI_STATUS_IGNORE);
  } else if (run.op == "all_reduce") {
    MPI_Allreduce(MPI_IN_PLACE, buf, static_cast<int>(bytes / 4), MPI_FLOAT, sum, comm);
  } else {
    fail("no replay for collective '" + run.op + "'");
  }
}

// Compute split evenly before and between a phase's calls, then after the last.
double replay_phase(const std::vector<Run>& runs, const std::string& phase, double compute_s, MPI_Comm comm,
                    char* buf, MPI_Op sum) {
  double calls = 0;
  for (const auto& r : runs) calls += r.phase == phase ? r.count : 0;
  const double slice = compute_s / (calls + 1);
  double in_calls = 0;
  for (const auto& r : runs) {
    if (r.phase != phase) continue;
    for (int k = 0; k < static_cast<int>(r.count); ++k) {
      smpi_execute_flops(slice * 1e9);  // the platform's hosts compute 1 GFLOP/s: seconds x 1e9
      const double t = MPI_Wtime();
      issue(r, comm, buf, sum);
      in_calls += MPI_Wtime() - t;
    }
  }
  smpi_execute_flops(slice * 1e9);
  return in_calls;
}

// The largest of every rank's `seconds`, on rank 0: the replay's own bookkeeping, after the timed part. A gather,
// not MPI_Reduce(MPI_MAX): for a commutative reduction SMPI's MPICH selector first builds node-aware communicators,
// whose simulation took 30 s of wall time at 1,024 ranks (a gather of 4,096 doubles: 0.5 s).
double slowest(double seconds) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  std::vector<double> all(rank == 0 ? world : 1);
  MPI_Gather(&seconds, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return *std::max_element(all.begin(), all.end());
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  std::vector<std::string> traces;
  std::string check, platform = "?", out, part = "all";
  int seq = 0, depth = 12;
  double n = 0, scale = 1;
  Rates rates;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--trace") traces.push_back(v);
    else if (k == "--check") check = v;  // a third trace the fit must reproduce
    else if (k == "--seq") seq = std::atoi(v.c_str());
    else if (k == "--depth") depth = std::atoi(v.c_str());
    else if (k == "--tokens-per-rank") n = std::atof(v.c_str());
    else if (k == "--bytes-scale") scale = std::atof(v.c_str());
    else if (k == "--matmul-tflops") rates.matmul = std::atof(v.c_str()) * 1e12;
    else if (k == "--attention-tflops") rates.attention = std::atof(v.c_str()) * 1e12;
    else if (k == "--bandwidth-gbs") rates.bandwidth = std::atof(v.c_str()) * 1e9;
    else if (k == "--platform-name") platform = v;
    else if (k == "--out") out = v;
    else if (k == "--part") part = v;  // all, layer (steps 1-3) or grad (step 4)
    else fail("unknown argument '" + k + "'");
  }
  if (part != "all" && part != "layer" && part != "grad") fail("--part must be all, layer or grad, not '" + part + "'");
  const bool replay_layer = part != "grad", replay_grad = part != "layer";
  if (traces.size() != 2) fail("give two --trace files (two sequence-group sizes of one strategy and model)");
  if (seq < 1 || world % seq != 0) fail("--seq must divide the " + std::to_string(world) + " simulated ranks");
  if (rates.matmul <= 0 || rates.attention <= 0 || rates.bandwidth <= 0) fail("give the machine's rates");
  auto a = load(traces[0]), b = load(traces[1]);
  if (a.group > b.group) std::swap(a, b);
  if (a.group == b.group) fail("the two traces have the same sequence-group size: record two different ones");
  if (n <= 0) fail("give --tokens-per-rank (the simulated tokens per sequence rank)");
  if (!check.empty() && rank == 0) {  // a third group size: the fit must reproduce it
    const auto c = load(check);
    const auto predicted = fit(a, b, c.group, c.n);
    for (size_t i = 0; i < c.runs.size() && i < predicted.size(); ++i) {
      if (predicted[i].count != c.runs[i].count || std::abs(predicted[i].bytes - c.runs[i].bytes) > 1.0) {
        fail("the linear fit misses the --check trace at run " + std::to_string(i) + " (" + c.runs[i].op + ")");
      }
    }
    if (predicted.size() != c.runs.size()) fail("the --check trace has a different call structure");
  }
  auto runs = fit(a, b, seq, n);
  if (scale <= 0) fail("--bytes-scale must be positive");
  for (auto& r : runs) r.bytes = std::max(static_cast<double>(seq) * 4.0, std::round(r.bytes / scale));
  const double L = n * seq;
  const double fwd = forward_seconds(a.head, n, L, rates);
  MPI_Comm comm = MPI_COMM_NULL;  // the rank's sequence group; only the layer needs it
  if (replay_layer) MPI_Comm_split(MPI_COMM_WORLD, rank / seq, rank % seq, &comm);
  double largest = 1 << 20;
  for (const auto& r : runs) largest = std::max(largest, r.bytes);
  const auto& m = a.head["model"];
  const double E = m["dim"], ratio = m["mlp_ratio"];
  const double grad_bytes =
      std::round((a.grad_bytes + 4.0 * (depth - 1) * ((4.0 + 2.0 * ratio) * E * E + (9.0 + ratio) * E)) / scale);
  largest = std::max(largest, grad_bytes);
  auto* buf = static_cast<char*>(SMPI_SHARED_MALLOC(static_cast<size_t>(largest) + 64));
  MPI_Op sum;
  MPI_Op_create(noop, 1, &sum);

  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = MPI_Wtime();
  double comm_s = 0;
  if (replay_layer) {
    comm_s += replay_phase(runs, "encoder forward", fwd, comm, buf, sum);
    comm_s += replay_phase(runs, "encoder backward", 2.0 * fwd, comm, buf, sum);
  }
  // The layer ends when its slowest rank does (not at a barrier over every simulated rank, whose own time would
  // grow with the machine, not the layer).
  const double layer_s = slowest(MPI_Wtime() - t0);
  MPI_Barrier(MPI_COMM_WORLD);
  const double t1 = MPI_Wtime();
  if (replay_grad && world > 1) {
    MPI_Allreduce(MPI_IN_PLACE, buf, static_cast<int>(grad_bytes / 4), MPI_FLOAT, sum, MPI_COMM_WORLD);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const double grad_s = MPI_Wtime() - t1;
  const double slowest_comm = slowest(comm_s);
  if (rank == 0) {
    nlohmann::json row = {{"simulated", true}, {"platform", platform}, {"ranks", world}, {"seq", seq},
                          {"data", world / seq}, {"strategy", a.head["attention"]}, {"tokens", L},
                          {"tokens_per_rank", n}, {"depth", depth}, {"part", part},
                          {"grad_bytes", grad_bytes * scale}, {"layer_ms", 1e3 * layer_s},
                          {"layer_compute_ms", 3e3 * fwd}, {"layer_comm_ms", 1e3 * slowest_comm},
                          {"grad_allreduce_ms", 1e3 * grad_s}, {"step_ms", 1e3 * (depth * layer_s + grad_s)},
                          {"traces", traces}};
    std::printf("%s\n", row.dump().c_str());
    if (!out.empty()) std::ofstream(out, std::ios::app) << row.dump() << "\n";
  }
  SMPI_SHARED_FREE(buf);
  MPI_Op_free(&sum);
  if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
  MPI_Finalize();
  return 0;
}

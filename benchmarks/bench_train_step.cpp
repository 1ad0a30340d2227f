// Where a training step's time goes, per phase, at a configuration (default: configs/tiny-cpu.yaml), and whether
// the loader keeps up with the step. Built from the public pieces the trainer uses (train::open_datasets/make_loader,
// model::Segmenter, train::segmentation_loss, dist::GradientAverager, the optimisers) without changing the trainer:
//
//   mpirun -np 2 bench_train_step [--config FILE] [--set key=value ...] [--steps N] [--warmup N] [--loader-batches N]
//                                 [--memory]
//
// Phases of one step, in order: waiting for the loader, batch assembly (stack + dtype), patch extraction
// (model::patchify, timed on its own), encoder forward, decoder forward, loss (CE + Dice), decoder backward, encoder
// backward, gradient averaging (the buckets not yet reduced during backward), finiteness check + clipping, optimiser
// step, metrics (the trainer's two world means). How the model's forward and backward are split:
//   * encoder forward: a second encoder of the same shape runs on the same tokens just before the model (its time
//     is not part of the step); decoder forward = model forward − that − patch extraction;
//   * backward: a hook on the encoder's final LayerNorm weight marks the boundary. On CPU, autograd runs the ready
//     node with the highest sequence number first and every decoder node was recorded after every encoder node, so
//     the whole decoder backward runs before the encoder's (the LayerNorm's own backward lands on the decoder side).
// Communication is the time spent issuing and waiting for collectives (TimedCommunicator wraps every communicator),
// so it includes waiting for a slower rank. Times are means over the timed steps and over the ranks.
//
// --memory also measures the step's peak memory above the resident set before the forward (activations and
// temporaries), the largest over steps and ranks, next to the estimate of docs/cluster.md. It makes glibc return
// every freed block of 64 KiB or more to the system at once, so that the resident set follows the live tensors;
// its timings then include those page faults and are not the ones to report.
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/core/dtype.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/core/torch_compat.h"
#include "spvit/dist/gradient_averager.h"
#include "spvit/dist/mpi_runtime.h"
#include "spvit/dist/process_grid.h"
#include "spvit/model/segmenter.h"
#include "spvit/train/config_check.h"
#include "spvit/train/data_setup.h"
#include "spvit/train/losses.h"
#include "spvit/train/optim/optim.h"
#include "timed_communicator.h"

using namespace spvit;

namespace {

struct Args {
  std::string config;
  std::vector<std::string> overrides;
  int64_t steps = 20, warmup = 3, loader_batches = 8;
  bool memory = false;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) SPVIT_THROW(ConfigError, arg, " needs a value");
      return argv[++i];
    };
    if (arg == "--config" || arg == "-c") a.config = value();
    else if (arg == "--set") a.overrides.push_back(value());
    else if (arg == "--steps") a.steps = std::stoll(value());
    else if (arg == "--warmup") a.warmup = std::stoll(value());
    else if (arg == "--loader-batches") a.loader_batches = std::stoll(value());
    else if (arg == "--memory") a.memory = true;
    else SPVIT_THROW(ConfigError, "unknown argument '", arg, "' (see the comment at the top of bench_train_step.cpp)");
  }
  if (a.steps < 1 || a.warmup < 0 || a.loader_batches < 1) SPVIT_THROW(ConfigError, "counts must be positive");
  return a;
}

enum Phase { kLoader, kBatch, kPatch, kEncFwd, kDecFwd, kLoss, kDecBwd, kEncBwd, kGradAvg, kCheckClip, kOptim,
             kMetrics, kPhases };
const char* kPhaseNames[kPhases] = {"waiting for the loader", "batch assembly (stack, dtype)",
                                    "patch extraction (patchify)", "encoder forward", "decoder forward",
                                    "loss (CE + Dice)", "decoder backward", "encoder backward",
                                    "gradient averaging (finish)", "finiteness check + clipping", "optimiser step",
                                    "metrics (world means)"};

// Accumulated seconds and communication seconds per phase.
struct Breakdown {
  std::vector<double> time = std::vector<double>(kPhases, 0.0), comm = std::vector<double>(kPhases, 0.0);
};

// Element-wise mean (or max) over the world of `values` (float64).
std::vector<double> over_world(const dist::ProcessGrid& grid, std::vector<double> values, dist::ReduceOp op) {
  auto t = torch::tensor(values, torch::kFloat64);
  grid.world()->all_reduce(t, op == dist::ReduceOp::Avg ? dist::ReduceOp::Sum : op)->wait();
  if (op == dist::ReduceOp::Avg) t /= grid.world_size();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

// A field of /proc/self/status in bytes ("VmRSS:" now, "VmHWM:" the peak since the last reset_peak()); 0 if absent.
double status_bytes(const std::string& key) {
  std::ifstream status("/proc/self/status");
  std::string word;
  while (status >> word) {
    if (word == key) {
      double kib = 0;
      status >> kib;
      return kib * 1024.0;
    }
  }
  return 0;
}

// Sets VmHWM back to the current resident set (Linux >= 4.0). False where that is not allowed.
bool reset_peak() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return clear.good();
}

// docs/cluster.md's estimate of what one step holds above the weights, per rank: {encoder, attention, decoder} bytes.
std::vector<double> memory_estimate(const Config& c, double tokens, double rank_tokens, double batch, double classes,
                                    int seq_ranks, double element_bytes) {
  const auto& m = c.model;
  const double E = static_cast<double>(m.dim), D = static_cast<double>(m.depth), H = static_cast<double>(m.heads);
  const double gathered = seq_ranks > 1 ? 2.0 * tokens : 0.0;  // the K‖V of the whole sequence, per layer
  const double block = (10.0 + 2.0 * m.mlp_ratio) * rank_tokens;
  const double encoder = m.checkpointing ? batch * E * element_bytes * (D * rank_tokens + block + gathered)
                                         : batch * D * E * element_bytes * (block + gathered);
  const bool fused = SPVIT_TORCH_HAS_SDPA != 0;  // the encoder's default: fused attention where LibTorch has it
  const double attention = fused ? 0.0 : (m.checkpointing ? 1.0 : D) * batch * H * rank_tokens * tokens * element_bytes;
  const double pixels = std::pow(static_cast<double>(m.patch), static_cast<double>(m.spatial_dims));
  const double decoder = batch * rank_tokens * pixels * (12.0 * static_cast<double>(m.decoder_width) + 10.0 * classes) *
                         element_bytes;
  return {encoder, attention, decoder};
}

// Samples/s the trainer's loader delivers on this rank to a consumer that does nothing (after one warm-up batch).
double loader_alone(const std::shared_ptr<data::Dataset>& dataset, const Config& config,
                    const dist::ProcessGrid& grid, int64_t batches) {
  auto loader = train::make_loader(dataset, config, grid, /*training=*/true);
  int64_t epoch = 0, samples = 0;
  auto next = [&] {
    auto b = loader->next();
    if (!b) {
      loader->start_epoch(++epoch);
      b = loader->next();
    }
    SPVIT_CHECK(b.has_value(), "the training data yields no batch");
    return static_cast<int64_t>(b->samples.size());
  };
  next();
  Stopwatch watch;
  for (int64_t i = 0; i < batches; ++i) samples += next();
  return static_cast<double>(samples) / watch.seconds();
}

}  // namespace

int main(int argc, char** argv) {
  dist::MpiRuntime mpi(&argc, &argv);
  log::init(mpi.world_rank(), mpi.world_size(), "warn");
  try {
    const Args args = parse_args(argc, argv);
    if (args.memory) {  // freed blocks >= 64 KiB go back to the system at once: the resident set tracks live tensors
      mallopt(M_MMAP_THRESHOLD, 64 * 1024);
      mallopt(M_TRIM_THRESHOLD, 64 * 1024);
    }
    const Config config = args.config.empty() ? train::parse_checked_config("", args.overrides)
                                              : train::load_checked_config(args.config, args.overrides);
    auto grid = dist::ProcessGrid::create({static_cast<int>(config.grid.data), static_cast<int>(config.grid.seq)},
                                          config.dist.timeout_s);
    if (grid.local_size() > 1 && std::getenv("OMP_NUM_THREADS") == nullptr) {  // as `spvit train` does
      torch::set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / grid.local_size()));
    }
    auto stats = std::make_shared<bench::CommStats>();
    auto wrap = [&](const dist::CommPtr& c) { return std::make_shared<bench::TimedCommunicator>(c, stats); };
    const dist::CommPtr world = wrap(grid.world()), seq = wrap(grid.seq()), data_comm = wrap(grid.data());
    const bool root = grid.world_rank() == 0;

    const auto datasets = train::open_datasets(config);
    const double delivered = loader_alone(datasets.train, config, grid, args.loader_batches);

    torch::manual_seed(config.seed);
    auto options = model::SegmenterOptions::from_config(config.model, datasets.train->num_classes());
    options.decoder = config.model.decoder;
    options.decoder_width = config.model.decoder_width;
    SPVIT_CHECK(model::decoders().at(options.decoder).uniform_bands,
                "bench_train_step measures a uniform-grid band decoder model");
    const auto dtype = parse_dtype(config.dtype);
    model::Segmenter model(options);
    model->to(dtype);
    model::ViTEncoder probe(options.encoder);  // same shape: times the encoder forward on its own
    probe->to(dtype);
    std::vector<std::pair<std::string, torch::Tensor>> named;
    torch::Tensor boundary;  // the encoder's final LayerNorm weight: its gradient marks the decoder/encoder boundary
    for (const auto& p : model->named_parameters()) {
      named.emplace_back(p.key(), p.value());
      if (p.key() == "encoder.norm.weight") boundary = p.value();
    }
    SPVIT_CHECK(boundary.defined(), "the model has no parameter 'encoder.norm.weight'");
    auto optimizer = train::make_optimizer(config.train.optimizer, train::decay_groups(named, config.train.weight_decay),
                                           config.train.lr, config.train.beta1, config.train.beta2, config.train.eps);
    dist::GradientAverager averager(model->parameters(), world, seq, data_comm,
                                    {dist::GradientAverager::parse_mode(config.dist.grad_average), config.dist.bucket_mb});
    auto loader = train::make_loader(datasets.train, config, grid, /*training=*/true);
    const auto params = model->parameters();

    Breakdown sum;
    bench::CommStats comm_before, probe_comm;
    int64_t epoch = 0, timed_steps = 0, tokens = 0, rank_tokens = 0, batch_samples = 0;
    double seconds_at_boundary = 0, comm_at_boundary = 0, peak_above = 0;
    Stopwatch step_clock;
    const unsigned hook = boundary.register_hook([&](torch::Tensor) {
      seconds_at_boundary = step_clock.seconds();
      comm_at_boundary = stats->total_seconds();
    });
    for (int64_t step = 0; step < args.warmup + args.steps; ++step) {
      if (step == args.warmup) comm_before = *stats;
      Breakdown b;
      step_clock.reset();
      double last = 0, last_comm = stats->total_seconds();
      auto mark = [&](Phase p) {
        const double now = step_clock.seconds(), c = stats->total_seconds();
        b.time[p] += now - last;
        b.comm[p] += c - last_comm;
        last = now;
        last_comm = c;
      };

      auto batch = loader->next();
      if (!batch) {
        loader->start_epoch(++epoch);
        batch = loader->next();
      }
      SPVIT_CHECK(batch.has_value(), "the training data yields no batch");
      mark(kLoader);
      auto [images, masks] = train::stack_batch(batch->samples);
      images = images.to(dtype);
      const auto& shape = batch->samples[0].full_shape;
      const auto bands = train::bands_for(shape, config, grid);
      double pixels = 1;
      for (auto side : shape) pixels *= static_cast<double>(side);
      mark(kBatch);
      const auto tokens_in = model::patchify(images, config.model.patch);
      mark(kPatch);
      {
        const bench::CommStats before = *stats;
        const auto ctx = bands.shard().context(seq);
        auto out = probe->forward(tokens_in, model::TokenMetadata{bands.token_indices(), {}}, ctx);
        if (step >= args.warmup) probe_comm.add(*stats, before);  // not the model's traffic: left out of the op table
      }
      mark(kEncFwd);

      const bool measure = args.memory && reset_peak();
      const double resident = measure ? status_bytes("VmRSS:") : 0.0;
      auto logits = model->forward_uniform(images, bands, seq);
      mark(kDecFwd);  // the whole model forward for now; split below
      auto parts = train::segmentation_loss(logits, masks, pixels, seq,
                                            train::LossOptions{config.train.ce_weight, config.train.dice_weight});
      mark(kLoss);
      seconds_at_boundary = -1;
      parts.total.backward();
      SPVIT_CHECK(seconds_at_boundary >= 0, "the encoder's final LayerNorm received no gradient");
      if (measure) peak_above = std::max(peak_above, status_bytes("VmHWM:") - resident);
      b.time[kDecBwd] += seconds_at_boundary - last;
      b.comm[kDecBwd] += comm_at_boundary - last_comm;
      last = seconds_at_boundary;
      last_comm = comm_at_boundary;
      mark(kEncBwd);
      averager.finish();
      mark(kGradAvg);
      const double local_loss = parts.total.item<double>();
      bool finite = std::isfinite(local_loss);
      for (const auto& p : params) finite = finite && (!p.grad().defined() || torch::isfinite(p.grad()).all().item<bool>());
      auto bad = torch::full({1}, finite ? 0.0 : 1.0, torch::kFloat64);
      world->all_reduce(bad, dist::ReduceOp::Max)->wait();
      if (config.train.clip_grad_norm > 0) train::clip_grad_norm(params, config.train.clip_grad_norm);
      mark(kCheckClip);
      optimizer->step();
      optimizer->zero_grad();  // the trainer does this at the start of the next step
      mark(kOptim);
      auto means = torch::tensor({local_loss, parts.dice.item<double>()}, torch::kFloat64);
      world->all_reduce(means, dist::ReduceOp::Sum)->wait();
      mark(kMetrics);

      // The model forward included patch extraction and an encoder forward, which have their own rows.
      b.time[kDecFwd] -= b.time[kPatch] + b.time[kEncFwd];
      b.comm[kDecFwd] -= b.comm[kEncFwd];
      if (step >= args.warmup) {
        for (int p = 0; p < kPhases; ++p) {
          sum.time[p] += b.time[p];
          sum.comm[p] += b.comm[p];
        }
        ++timed_steps;
      }
      tokens = bands.num_tokens();
      rank_tokens = bands.shard().local_length();
      batch_samples = static_cast<int64_t>(batch->samples.size());
    }
    boundary.remove_hook(hook);

    // Means over steps, then over ranks.
    std::vector<double> local(2 * kPhases);
    for (int p = 0; p < kPhases; ++p) {
      local[p] = sum.time[p] / static_cast<double>(timed_steps);
      local[kPhases + p] = sum.comm[p] / static_cast<double>(timed_steps);
    }
    const auto mean = over_world(grid, local, dist::ReduceOp::Avg);
    const double slowest_delivery = over_world(grid, {delivered}, dist::ReduceOp::Min)[0];
    std::vector<double> per_op(3 * bench::CommStats::kOps);
    for (size_t k = 0; k < bench::CommStats::kOps; ++k) {
      const auto n = static_cast<double>(timed_steps);
      per_op[k] = static_cast<double>(stats->calls[k] - comm_before.calls[k] - probe_comm.calls[k]) / n;
      per_op[bench::CommStats::kOps + k] =
          static_cast<double>(stats->bytes[k] - comm_before.bytes[k] - probe_comm.bytes[k]) / n;
      per_op[2 * bench::CommStats::kOps + k] = (stats->seconds[k] - comm_before.seconds[k] - probe_comm.seconds[k]) / n;
    }
    const auto ops = over_world(grid, per_op, dist::ReduceOp::Avg);
    const double peak = over_world(grid, {peak_above}, dist::ReduceOp::Max)[0];
    if (!root) return 0;

    double step_s = 0, comm_s = 0;
    for (int p = 0; p < kPhases; ++p) {
      step_s += mean[p];
      comm_s += mean[kPhases + p];
    }
    std::printf("bench_train_step: %s, grid %s (data x seq), %lld tokens per sample (%lld on rank 0), batch %lld, %s, "
                "%d CPU thread(s) per rank, %lld timed steps after %lld warm-up\n\n",
                args.config.empty() ? "built-in defaults" : args.config.c_str(), grid.shape().str().c_str(),
                static_cast<long long>(tokens), static_cast<long long>(rank_tokens), static_cast<long long>(batch_samples),
                config.dtype.c_str(), torch::get_num_threads(), static_cast<long long>(args.steps),
                static_cast<long long>(args.warmup));
    std::printf("| phase | ms/step | of which communication ms | share of step |\n|---|---|---|---|\n");
    for (int p = 0; p < kPhases; ++p) {
      std::printf("| %s | %.2f | %.2f | %.1f%% |\n", kPhaseNames[p], 1e3 * mean[p], 1e3 * mean[kPhases + p],
                  100.0 * mean[p] / step_s);
    }
    std::printf("| **step** | **%.2f** | **%.2f** | 100%% |\n\n", 1e3 * step_s, 1e3 * comm_s);
    std::printf("| collective | calls/step | MB/step | ms/step |\n|---|---|---|---|\n");
    for (size_t k = 0; k < bench::CommStats::kOps; ++k) {
      if (ops[k] == 0) continue;
      std::printf("| %s | %.1f | %.3f | %.2f |\n", dist::op_name(static_cast<dist::CollectiveOp>(k)), ops[k],
                  ops[bench::CommStats::kOps + k] / 1e6, 1e3 * ops[2 * bench::CommStats::kOps + k]);
    }
    const double consumed = static_cast<double>(batch_samples) / (step_s - mean[kLoader]);
    std::printf("\nloader alone (trainer's loader, consumer doing nothing): %.2f samples/s on the slowest rank\n"
                "training step without the loader wait consumes %.2f samples/s per rank (batch %lld / %.1f ms)\n"
                "waiting for the loader during training: %.2f ms per step (%.1f%% of the step)\n",
                slowest_delivery, consumed, static_cast<long long>(batch_samples), 1e3 * (step_s - mean[kLoader]),
                1e3 * mean[kLoader], 100.0 * mean[kLoader] / step_s);
    if (args.memory) {
      const auto est = memory_estimate(config, static_cast<double>(tokens), static_cast<double>(rank_tokens),
                                       static_cast<double>(batch_samples),
                                       static_cast<double>(datasets.train->num_classes()), grid.seq_size(),
                                       static_cast<double>(c10::elementSize(dtype)));
      std::printf("peak memory of forward + backward above the resident set before it (largest rank): %.1f MiB\n"
                  "docs/cluster.md estimate: %.1f MiB = encoder %.1f + attention scores %.1f + decoder %.1f\n"
                  "(timings of a --memory run include returning memory to the system: do not report them)\n",
                  peak / 1048576.0, (est[0] + est[1] + est[2]) / 1048576.0, est[0] / 1048576.0, est[1] / 1048576.0,
                  est[2] / 1048576.0);
    }
    return 0;
  } catch (const ConfigError& e) {
    if (mpi.world_rank() == 0) std::fprintf(stderr, "configuration error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    dist::abort_world(3);
  }
}

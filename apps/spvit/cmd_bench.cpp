// `spvit bench step`: the training step that `spvit train` runs (train::TrainStep from train::make_training_parts),
// timed phase by phase (step_timing.h). Two ways to feed it:
//   * a configuration (-c FILE, --set, default: the built-in one): the trainer's data and loader; prints the phase
//     and collective tables, how fast the loader delivers on its own, and with --memory the step's peak memory
//     next to docs/cluster.md's estimate; with --loader-only just the loader: its rate and every rank's peak host
//     memory (what a GPU run holds on the host besides the framework: the data pipeline);
//   * --tokens N[,N...]: a synthetic square image of N P-sided patches per size and a ViT-B/16 + UNETR model by
//     default (--dim, --depth, ... are shorthands for --set model.*), trained with cross-entropy and AdamW as
//     benchmarks/pytorch_baseline.py does, for the side-by-side comparison; `--find-max` keeps doubling the side
//     after the last size until a step no longer fits.
// Every run prints one JSON line (appended to --out too): step time, tokens/s, encoder model TFLOP/s
// (docs/performance.md, "Model FLOPs"), the precision that ran, peak memory, and with --split the time split.
#include <malloc.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app_context.h"
#include "bench_commands.h"
#include "step_timing.h"
#include "spvit/core/device.h"
#include "spvit/core/device_memory.h"
#include "spvit/core/even_split.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/core/timer.h"
#include "spvit/core/torch_compat.h"
#include "spvit/model/decoder.h"
#include "spvit/plan/step_model.h"
#include "spvit/train/config_check.h"
#include "spvit/train/data_setup.h"

namespace spvit::app {
namespace {

struct BenchArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::vector<int64_t> tokens;  // synthetic mode when given
  int64_t steps = 10, warmup = 3, loader_batches = 8;
  bool split = false, memory = false, find_max = false, loader_only = false;
  std::string out;
  std::string trace;                    // --trace FILE: the collectives of the last timed step (synthetic runs)
  std::vector<std::string> shorthands;  // --dim 768 -> "model.dim=768", in the order given
  std::string precision;                // --precision (synthetic runs: bf16 unless told otherwise); "" = the config's
};

// The synthetic mode's model and training settings: ViT-B/16 + UNETR, cross-entropy, AdamW(1e-4, wd 0.05), no
// clipping or schedule: what benchmarks/pytorch_baseline.py trains.
const std::vector<std::string> kSyntheticBase = {
    "model.channels=3", "model.patch=16", "model.dim=768", "model.depth=12", "model.heads=12",
    "model.mlp_ratio=4", "model.decoder=unetr", "model.decoder_width=16", "model.pos_encoding=grid",
    "train.optimizer=adamw", "train.lr=0.0001", "train.weight_decay=0.05", "train.schedule=constant",
    "train.warmup_steps=0", "train.clip_grad_norm=0", "train.ce_weight=1", "train.dice_weight=0",
    "data.source=synthetic", "data.val_samples=0"};

// fwd+bwd of `depth` attention calls at this size alone: how much of the step the attention kernels take.
double attention_only_ms(const ModelConfig& m, int64_t n, const torch::Device& device, torch::ScalarType dtype) {
  const int64_t d = m.dim / m.heads;
  auto opts = torch::TensorOptions().device(device).dtype(dtype).requires_grad(true);
  auto q = torch::randn({1, m.heads, n, d}, opts), k = torch::randn({1, m.heads, n, d}, opts),
       v = torch::randn({1, m.heads, n, d}, opts);
  auto once = [&] {
    auto o = compat::scaled_dot_product_attention(q, k, v, {});
    o.backward(torch::ones_like(o));
  };
  once();
  synchronize(device);
  Stopwatch watch;
  for (int64_t i = 0; i < m.depth; ++i) once();
  synchronize(device);
  return watch.seconds() * 1e3;
}

// Batches of a loader forever, moving to the next epoch when one ends.
std::function<data::Batch()> endless(data::Loader& loader) {
  auto epoch = std::make_shared<int64_t>(0);
  return [&loader, epoch] {
    auto b = loader.next();
    if (!b) {
      loader.start_epoch(++*epoch);
      b = loader.next();
    }
    SPVIT_CHECK(b.has_value(), "the training data yields no batch");
    return std::move(*b);
  };
}

// Samples/s the trainer's loader delivers on this rank to a consumer that does nothing (after one warm-up batch).
double loader_alone(const std::shared_ptr<data::Dataset>& dataset, const Config& config, const dist::ProcessGrid& grid,
                    int64_t batches) {
  auto loader = train::make_loader(dataset, config, grid, /*training=*/true);
  auto next = endless(*loader);
  next();
  int64_t samples = 0;
  Stopwatch watch;
  for (int64_t i = 0; i < batches; ++i) samples += static_cast<int64_t>(next().samples.size());
  return static_cast<double>(samples) / watch.seconds();
}

// One rank's band of a random square image of `pixels` per side: what the loader would deliver for it.
data::Batch synthetic_batch(const Config& c, int64_t pixels, const dist::ProcessGrid& grid, int64_t classes) {
  const std::vector<int64_t> shape{pixels, pixels};
  const auto region = train::band_pixels(train::bands_for(shape, c, grid));
  const int64_t rows = region.extent(0);
  data::Sample s;
  s.image = torch::randn({rows, pixels, c.model.channels});
  s.mask = torch::randint(0, classes, {rows, pixels}, torch::kLong);
  s.region = region;
  s.full_shape = shape;
  s.id = "synthetic";
  data::Batch b;
  b.samples.push_back(std::move(s));
  b.indices.push_back(0);
  b.draws.emplace_back();
  return b;
}

bool out_of_memory(const std::exception& e) {
  const std::string what = e.what();
  return what.find("out of memory") != std::string::npos || what.find("OutOfMemory") != std::string::npos;
}

class StepBench {
 public:
  StepBench(const BenchArgs& args, const AppContext& ctx) : args_(args), ctx_(ctx) {}

  int run() {
    if (args_.memory) {  // freed blocks >= 64 KiB go back to the system at once: the resident set tracks live tensors
      mallopt(M_MMAP_THRESHOLD, 64 * 1024);
      mallopt(M_TRIM_THRESHOLD, 64 * 1024);
    }
    if (args_.tokens.empty()) return run_config();
    std::vector<int64_t> sizes = args_.tokens;
    for (size_t i = 0; i < sizes.size(); ++i) {
      try {
        run_synthetic(sizes[i]);
      } catch (const std::exception& e) {
        if (!out_of_memory(e)) throw;
        release_cached_memory(device_);
        report({{"tokens", sizes[i]}, {"error", "out of memory"}});
        break;
      }
      if (args_.find_max && i + 1 == sizes.size()) sizes.push_back(sizes[i] * 4);  // side x2: tokens x4
    }
    return 0;
  }

 private:
  // The configuration of a run: the file (or built-in defaults), then `base`, the shorthands and --set. A 16-bit
  // precision that cannot run here (no CUDA device, LibTorch < 2.4) falls back to fp32 with a warning; the report
  // says what ran.
  std::vector<std::string> overrides_after(const std::vector<std::string>& base, const std::string& precision) const {
    auto overrides = base;
    overrides.insert(overrides.end(), args_.shorthands.begin(), args_.shorthands.end());
    if (!precision.empty()) overrides.push_back("train.precision=" + precision);
    overrides.insert(overrides.end(), args_.overrides.begin(), args_.overrides.end());
    return overrides;
  }
  // Core's checks only (no grid, no registries yet), in fp32 when --precision was given: where the run goes.
  Config draft(const std::vector<std::string>& base) const {
    const auto overrides = overrides_after(base, args_.precision.empty() ? "" : "fp32");
    return args_.config.empty() ? parse_config("", overrides) : load_config(args_.config, overrides);
  }
  Config configure(const std::vector<std::string>& base) {
    const Config first = draft(base);
    if (!grid_) {  // one grid for every size of a run; the step's copy has its communicators timed
      grid_ = std::make_unique<dist::ProcessGrid>(make_grid(
          {static_cast<int>(first.grid.data), static_cast<int>(first.grid.seq)}, first.dist.timeout_s, first.device,
          first.dist.backend));
      stats_ = std::make_shared<dist::CommStats>();
      timed_grid_ = std::make_unique<dist::ProcessGrid>(grid_->with_communicators(
          [this](const dist::CommPtr& c) { return std::make_shared<dist::TimedCommunicator>(c, stats_); }));
    }
    device_ = select_device(first.device, grid_->local_rank());
    // --precision asks for what this device can do: bf16/fp16 fall back to fp32 where they cannot run (no CUDA
    // device, LibTorch < 2.4), with a warning; the report says what ran. A configuration's own precision is checked
    // as `spvit train` checks it.
    std::string precision = args_.precision;
    if (precision != "fp32" && !precision.empty() && !(device_.is_cuda() && compat::AutocastGuard::supported())) {
      if (ctx_.world_rank == 0) {
        log::warn("bench step: --precision {} needs a CUDA device and LibTorch >= 2.4; running fp32 on {}", precision,
                  device_.str());
      }
      precision = "fp32";
    }
    const auto overrides = overrides_after(base, precision);
    return args_.config.empty() ? train::parse_checked_config("", overrides)
                                : train::load_checked_config(args_.config, overrides);
  }

  StepTimingOptions timing_options(bool split) const {
    StepTimingOptions o;
    o.warmup = args_.warmup;
    o.steps = args_.steps;
    o.split = split;
    o.memory = args_.memory;
    return o;
  }

  // The JSON line every run prints: what ran, and how fast.
  nlohmann::json result_line(const Config& c, const train::TrainingParts& parts, const StepTiming& t, int64_t tokens,
                             int64_t classes, bool split) {
    const double step_s = t.step_s - t.phase_s[kLoaderWait];
    nlohmann::json r;
    r["tokens"] = tokens;
    r["step_ms"] = step_s * 1e3;
    r["tokens_per_s"] = t.tokens / step_s;
    // Every sample of every data group: the job's model FLOP rate.
    r["encoder_tflops"] = plan::encoder_model_flops(c.model, tokens) * static_cast<double>(t.batch_samples * grid_->data_size()) /
                          step_s / 1e12;
    r["peak_gib"] = t.peak_gib;
    r["peak_of"] = parts.precision.device.is_cuda() ? "device" : "host RSS";
    r["loss"] = t.loss;
    r["device"] = parts.precision.device.str();
    r["precision"] = parts.precision.mode();  // what ran, not what was asked for
    r["checkpointing"] = c.model.checkpointing;
    r["decoder_chunk_rows"] = c.model.decoder_chunk_rows;
    r["ranks"] = grid_->world_size();
    r["grid"] = grid_->shape().str();
    r["skipped_steps"] = t.skipped_steps;  // non-finite or fp16-overflow steps, left out of the times
    r["attention"] = c.model.attention;
    // What ran, for `spvit plan --validate` to predict the same step: the model's shape, batch, classes, settings.
    const auto& m = c.model;
    r["model"] = {{"channels", m.channels}, {"patch", m.patch}, {"spatial_dims", m.spatial_dims}, {"dim", m.dim},
                  {"depth", m.depth}, {"heads", m.heads}, {"mlp_ratio", m.mlp_ratio},
                  {"pos_encoding", m.pos_encoding}, {"max_tokens", m.max_tokens}, {"decoder", m.decoder},
                  {"decoder_width", m.decoder_width}};
    r["batch"] = t.batch_samples;
    r["classes"] = classes;
    r["ulysses_size"] = c.dist.ulysses_size;
    r["hybrid_outer"] = c.dist.hybrid_outer;
    r["grad_average"] = c.dist.grad_average;
    // Every communicator's traffic per step, mean over ranks (nccl-tests' sent/received definitions).
    nlohmann::json comm = nlohmann::json::object();
    for (size_t k = 0; k < dist::CommStats::kOps; ++k) {
      if (t.ops.calls[k] == 0) continue;
      comm[dist::op_name(static_cast<dist::CollectiveOp>(k))] = {
          {"calls", t.ops.calls[k]}, {"sent_bytes", t.ops.bytes_sent[k]},
          {"received_bytes", t.ops.bytes_received[k]}, {"ms", t.ops.seconds[k] * 1e3}};
    }
    r["comm_per_step"] = comm;
    if (split) {
      nlohmann::json split;
      for (int p = 0; p < kBenchPhases; ++p) {
        if (p == kEncoderForward && !t.encoder_forward_split) continue;  // tile models: one forward row
        split[p == kDecoderForward && !t.encoder_forward_split ? "model forward" : bench_phase_name(p)] =
            t.phase_s[p] * 1e3;
      }
      r["split_ms"] = split;
    }
    return r;
  }

  void report(const nlohmann::json& r) const {
    if (ctx_.world_rank != 0) return;
    std::printf("%s\n", r.dump().c_str());
    std::fflush(stdout);
    if (!args_.out.empty()) std::ofstream(args_.out, std::ios::app) << r.dump() << "\n";
  }

  // --trace: rank 0's collectives of one step, in order — a header line (what ran: bench step's row) and one line per
  // call (op, communicator, its size, nccl-tests' bytes, phase). scripts/simulation/ replays them with SimGrid.
  void write_trace(const nlohmann::json& row, const std::vector<dist::TraceEvent>& trace) const {
    if (ctx_.world_rank != 0) return;
    std::ofstream out(args_.trace, std::ios::app);
    SPVIT_CHECK(out.good(), "bench step: cannot open --trace '", args_.trace, "' for appending");
    auto header = row;
    header["trace_events"] = trace.size();
    out << header.dump() << "\n";
    for (const auto& e : trace) {
      out << nlohmann::json{{"op", dist::op_name(e.op)}, {"comm", e.comm}, {"ranks", e.ranks}, {"bytes", e.bytes},
                            {"sent", e.sent}, {"received", e.received}, {"phase", e.phase}}
                 .dump()
          << "\n";
    }
    SPVIT_CHECK(out.good(), "bench step: writing --trace '", args_.trace, "' failed");
  }

  void run_synthetic(int64_t n) {
    const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
    SPVIT_CHECK(side * side == n, "bench step: --tokens ", n, " must be a square number (a square image of P-pixel "
                "patches)");
    constexpr int64_t kClasses = 4;
    // The patch is known once the shorthands are read; the sizes that depend on it come after.
    const int64_t pixels = side * draft(kSyntheticBase).model.patch;
    auto base = kSyntheticBase;
    for (const auto& kv : {std::string("grid.data=1"), "grid.seq=" + std::to_string(ctx_.world_size),
                           "model.max_tokens=" + std::to_string(n), "data.size=" + std::to_string(pixels),
                           "train.steps=" + std::to_string(args_.warmup + args_.steps)}) {
      base.push_back(kv);
    }
    const Config c = configure(base);
    auto parts = train::make_training_parts(c, *timed_grid_, kClasses);
    if (ctx_.world_rank == 0) {
      log::info("bench step: {} tokens ({}² pixels), dim {} depth {} heads {} patch {}, grid {}, {}", n, pixels,
                c.model.dim, c.model.depth, c.model.heads, c.model.patch, grid_->shape().str(),
                parts->precision.describe());
    }
    const auto batch = synthetic_batch(c, pixels, *timed_grid_, kClasses);
    auto options = timing_options(args_.split || !args_.trace.empty());
    std::vector<dist::TraceEvent> trace;
    if (!args_.trace.empty()) options.trace = &trace;
    const auto local = time_steps(*parts, c, *timed_grid_, stats_, [&] { return batch; }, options);
    const auto t = average_over_world(local, *grid_);
    auto r = result_line(c, *parts, t, n, kClasses, args_.split);
    r["image_side"] = pixels;
    r["attention_ms"] = attention_only_ms(c.model, n / grid_->seq_size(), parts->precision.device,
                                          parts->precision.autocast ? parts->precision.autocast_dtype : torch::kFloat);
    report(r);
    if (!args_.trace.empty()) write_trace(r, trace);
  }

  // --loader-only: the trainer's loader on this rank's share, no model. Host memory per rank: the process's resident
  // set after opening the data (slides, annotations, tissue masks) and its peak while the loader delivered.
  int run_loader_only(const Config& c, const train::Datasets& datasets) {
    const double opened = process_memory_bytes("VmRSS:");
    reset_process_peak_rss();  // the peak while the loader delivers, not a transient of opening the data
    const double delivered = loader_alone(datasets.train, c, *grid_, args_.loader_batches);
    const double peak = process_memory_bytes("VmHWM:");
    auto per_rank = torch::tensor({delivered, opened / 1048576.0, peak / 1048576.0}, torch::kFloat64);
    auto& world = *grid_->world();
    const auto all = dist::all_gather_rows(world, per_rank.view({1, 3}),
                                           std::vector<int64_t>(static_cast<size_t>(world.size()), 1));
    if (ctx_.world_rank != 0) return 0;
    std::printf("bench step --loader-only: %s, grid %s (data x seq), %lld batches of %lld after one warm-up, %d "
                "loader worker(s), prefetch %lld\n\n| rank | samples/s | resident after opening MiB | peak resident "
                "MiB |\n|---|---|---|---|\n",
                args_.config.empty() ? "built-in defaults" : args_.config.c_str(), grid_->shape().str().c_str(),
                static_cast<long long>(args_.loader_batches), static_cast<long long>(c.train.batch_size),
                static_cast<int>(c.data.workers), static_cast<long long>(c.data.prefetch));
    const auto a = all.accessor<double, 2>();
    nlohmann::json ranks = nlohmann::json::array();
    for (int64_t r = 0; r < all.size(0); ++r) {
      std::printf("| %lld | %.3f | %.0f | %.0f |\n", static_cast<long long>(r), a[r][0], a[r][1], a[r][2]);
      ranks.push_back({{"samples_per_s", a[r][0]}, {"opened_mib", a[r][1]}, {"peak_mib", a[r][2]}});
    }
    std::printf("\n");
    report({{"config", args_.config.empty() ? "built-in defaults" : args_.config}, {"loader_only", true},
            {"grid", grid_->shape().str()}, {"ranks", ranks}});
    return 0;
  }

  int run_config() {
    const Config c = configure({});
    const auto datasets = train::open_datasets(c);
    if (args_.loader_only) return run_loader_only(c, datasets);
    const double delivered = loader_alone(datasets.train, c, *timed_grid_, args_.loader_batches);
    auto parts = train::make_training_parts(c, *timed_grid_, datasets.train->num_classes());
    auto loader = train::make_loader(datasets.train, c, *timed_grid_, /*training=*/true);
    const auto local = time_steps(*parts, c, *timed_grid_, stats_, endless(*loader), timing_options(true));
    const auto t = average_over_world(local, *grid_);
    const double slowest_delivery = [&] {
      auto d = torch::tensor({delivered}, torch::kFloat64);
      grid_->world()->all_reduce(d, dist::ReduceOp::Min)->wait();
      return d.item<double>();
    }();
    // Tokens of one sample (its whole sequence) and rank 0's share: a uniform grid's bands, or a layout's segments.
    int64_t tokens = 0, rank_tokens = 0;
    if (model::decoders().at(c.model.decoder).uniform_bands) {
      const auto bands = train::bands_for(datasets.train->spatial_shape(0), c, *grid_);
      tokens = bands.num_tokens();
      rank_tokens = bands.shard().counts.at(0);
    } else {
      tokens = std::llround(t.tokens / static_cast<double>(t.batch_samples * grid_->data_size()));
      rank_tokens = even_split(tokens, grid_->seq_size()).at(0);
    }
    if (ctx_.world_rank != 0) return 0;
    std::printf("bench step: %s, grid %s (data x seq), %lld tokens per sample (%lld on rank 0), batch %lld, %s, "
                "%d CPU thread(s) per rank, %lld timed steps after %lld warm-up\n\n",
                args_.config.empty() ? "built-in defaults" : args_.config.c_str(), grid_->shape().str().c_str(),
                static_cast<long long>(tokens), static_cast<long long>(rank_tokens),
                static_cast<long long>(t.batch_samples), parts->precision.describe().c_str(),
                torch::get_num_threads(), static_cast<long long>(args_.steps), static_cast<long long>(args_.warmup));
    std::printf("%s\n%s\n", phase_table(t).c_str(), collectives_table(t).c_str());
    const double compute_s = t.step_s - t.phase_s[kLoaderWait];
    std::printf("loader alone (trainer's loader, consumer doing nothing): %.2f samples/s on the slowest rank\n"
                "training step without the loader wait consumes %.2f samples/s per rank (batch %lld / %.1f ms)\n"
                "waiting for the loader during training: %.2f ms per step (%.1f%% of the step)\n",
                slowest_delivery, static_cast<double>(t.batch_samples) / compute_s,
                static_cast<long long>(t.batch_samples), 1e3 * compute_s, 1e3 * t.phase_s[kLoaderWait],
                100.0 * t.phase_s[kLoaderWait] / t.step_s);
    nlohmann::json memory;
    if (args_.memory) {
      auto w = plan::workload_from_config(c, datasets.train->num_classes());
      w.tokens = tokens;
      w.batch = t.batch_samples;
      w.element_bytes = static_cast<double>(c10::elementSize(parts->precision.param_dtype));
      plan::Candidate cand;
      cand.data = grid_->data_size();
      cand.seq = grid_->seq_size();
      cand.strategy = c.model.attention;
      cand.ulysses_size = c.dist.ulysses_size;
      cand.hybrid_outer = c.dist.hybrid_outer;
      cand.checkpointing = c.model.checkpointing;
      const auto est = plan::memory_per_rank(w, cand, grid_->world_size(), SPVIT_TORCH_HAS_SDPA != 0);
      std::printf("peak memory of the step above the resident set before it (largest rank): %.1f MiB\n"
                  "docs/cluster.md estimate: %.1f MiB = encoder %.1f + attention scores %.1f + decoder %.1f\n"
                  "(timings of a --memory run include returning memory to the system: do not report them)\n",
                  t.peak_above_bytes / 1048576.0, est.activations() / 1048576.0, est.encoder / 1048576.0,
                  est.attention_scores / 1048576.0, est.decoder / 1048576.0);
      memory = {{"peak_above_mib", t.peak_above_bytes / 1048576.0}, {"estimate_mib", est.activations() / 1048576.0}};
    }
    std::printf("\n");
    auto r = result_line(c, *parts, t, tokens, datasets.train->num_classes(), /*split=*/true);
    if (!memory.is_null()) r["memory"] = memory;
    r["config"] = args_.config.empty() ? "built-in defaults" : args_.config;
    report(r);
    return 0;
  }

  const BenchArgs& args_;
  const AppContext& ctx_;
  std::unique_ptr<dist::ProcessGrid> grid_, timed_grid_;
  std::shared_ptr<dist::CommStats> stats_;
  torch::Device device_ = torch::kCPU;
};

void add_bench_command(CLI::App& app, AppContext& ctx) {
  auto* bench = app.add_subcommand("bench", "Performance benchmarks");
  bench->require_subcommand(1);
  add_bench_collectives_command(*bench, ctx);
  auto* cmd = bench->add_subcommand("step", "Time the training step `spvit train` runs, phase by phase: on a "
                                            "configuration's data, or on synthetic images of --tokens N");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("--config,-c", a->config, "YAML configuration (default: built-in defaults)");
  cmd->add_option("--set", a->overrides, "override a key, e.g. --set model.dim=384 (repeatable)");
  cmd->add_option("--tokens", a->tokens, "synthetic mode: tokens per sample (square numbers), e.g. 4096,16384,65536")
      ->delimiter(',');
  // Shorthands for --set keys (synthetic runs start from ViT-B/16 + UNETR; see kSyntheticBase).
  const std::vector<std::tuple<const char*, const char*, const char*>> shorthands = {
      {"--dim", "model.dim", "embedding width"},
      {"--depth", "model.depth", "transformer blocks"},
      {"--heads", "model.heads", "attention heads"},
      {"--mlp-ratio", "model.mlp_ratio", "MLP width / dim"},
      {"--patch", "model.patch", "patch side (power of two)"},
      {"--decoder-width", "model.decoder_width", "decoder channels at full resolution"},
      {"--decoder-chunk-rows", "model.decoder_chunk_rows", "decode this many token rows at a time (0: all)"},
      {"--attention-backend", "model.attention_backend", "auto, cudnn, flash, efficient, math"},
      {"--device", "device", "auto, cpu, cuda"}};
  for (const auto& [flag, key, help] : shorthands) {
    const std::string k = key;
    cmd->add_option_function<std::string>(flag, [a, k](const std::string& v) { a->shorthands.push_back(k + "=" + v); },
                                          std::string(help) + " (--set " + k + "=...)");
  }
  cmd->add_option("--precision", a->precision,
                  "bf16 (autocast on CUDA; the default with --tokens), fp16 or fp32; falls back to fp32 where it "
                  "cannot run")
      ->check(CLI::IsMember({"bf16", "fp16", "fp32"}));
  cmd->add_flag_function("--checkpointing", [a](int64_t) { a->shorthands.push_back("model.checkpointing=true"); },
                         "recompute each block in backward (--set model.checkpointing=true)");
  cmd->add_option("--steps", a->steps, "timed steps")->default_val(a->steps)->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", a->warmup, "untimed steps first")->default_val(a->warmup)->check(CLI::NonNegativeNumber);
  cmd->add_option("--loader-batches", a->loader_batches, "batches the loader-alone rate is measured on")
      ->default_val(a->loader_batches)
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--loader-only", a->loader_only,
                "with a configuration: only the trainer's loader (no model): samples/s and peak host memory per rank");
  cmd->add_flag("--split", a->split, "with --tokens: also time each phase (synchronises a GPU at every phase)");
  cmd->add_flag("--memory", a->memory, "the step's peak memory above the resident set before it (CPU)");
  cmd->add_flag("--find-max", a->find_max, "with --tokens: double the side after the last size until out of memory");
  cmd->add_option("--out", a->out, "append each JSON line to this file");
  cmd->add_option("--trace", a->trace,
                  "with --tokens: append rank 0's collectives of the last timed step to this file (JSONL: the run's "
                  "row, then one line per call with its phase) for scripts/simulation/");
  cmd->callback([&ctx, a]() {
    if (a->tokens.empty() && a->find_max) SPVIT_THROW(ConfigError, "bench step: --find-max needs --tokens");
    if (!a->trace.empty() && a->tokens.empty()) {
      SPVIT_THROW(ConfigError, "bench step: --trace records a synthetic run's collectives: give --tokens");
    }
    if (!a->tokens.empty() && a->loader_only) {
      SPVIT_THROW(ConfigError, "bench step: --loader-only times a configuration's loader; --tokens has none");
    }
    // Synthetic runs ask for bf16 unless told otherwise (the PyTorch baseline's precision).
    if (!a->tokens.empty() && a->precision.empty()) a->precision = "bf16";
    ctx.run = [&ctx, a]() { return StepBench(*a, ctx).run(); };
  });
}

const CommandRegistration bench_registration("bench", add_bench_command);

}  // namespace
}  // namespace spvit::app

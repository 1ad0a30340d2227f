// `spvit bench train`: training-step throughput of a ViT + UNETR decoder on synthetic input, at several sequence
// lengths, for scaling studies and the comparison with PyTorch (benchmarks/pytorch_baseline.py builds the same
// model). Prints one JSON object per size (and appends them to --out): step time, tokens/s, encoder model TFLOP/s
// (docs/performance.md, "Model FLOPs"), the precision that ran, peak memory (the device's on a GPU, the process's
// RSS on the CPU), and the time of the attention kernels alone at that size.
// `--find-max` keeps doubling the sequence after the last size until a step no longer fits.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app_context.h"
#include "spvit/core/device.h"
#include "spvit/core/device_memory.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/core/timer.h"
#include "spvit/core/torch_compat.h"
#include "spvit/dist/gradient_averager.h"
#include "spvit/model/segmenter.h"
#include "spvit/train/optim/optimizer.h"
#include "spvit/train/precision.h"

namespace spvit::app {
namespace {

struct BenchArgs {
  std::vector<int64_t> tokens{4096, 16384, 65536};
  int64_t dim = 768, depth = 12, heads = 12, patch = 16, channels = 3, classes = 4, decoder_width = 16;
  int64_t decoder_chunk_rows = 0;
  double mlp_ratio = 4.0;
  std::string precision = "bf16";
  std::string attention_backend = "auto";
  std::string device = "auto";
  int steps = 10, warmup = 3;
  bool checkpointing = false;
  bool find_max = false;
  std::string out;
};

// What a step computes in: --precision bf16 is bf16 autocast on a CUDA device with LibTorch >= 2.4 (as the trainer's
// RunPrecision); anywhere else the step runs in fp32, and the report says so.
train::RunPrecision bench_precision(const std::string& requested, const torch::Device& device) {
  train::RunPrecision p;
  p.device = device;
  p.autocast = requested == "bf16" && device.is_cuda() && compat::AutocastGuard::supported();
  p.autocast_dtype = torch::kBFloat16;
  return p;
}

// Encoder model FLOPs of one training step (forward + backward = 3x forward): docs/performance.md, "Model FLOPs".
double encoder_flops(const BenchArgs& a, int64_t n) {
  const double N = static_cast<double>(n), E = static_cast<double>(a.dim);
  const double in = static_cast<double>(a.channels * a.patch * a.patch);
  return 3.0 * (static_cast<double>(a.depth) * (24.0 * N * E * E + 4.0 * N * N * E) + 2.0 * N * in * E);
}

// fwd+bwd of `depth` attention calls at this size alone: how much of the step the attention kernels take.
double attention_only_ms(const BenchArgs& a, int64_t n, const torch::Device& device, torch::ScalarType dtype) {
  const int64_t d = a.dim / a.heads;
  auto opts = torch::TensorOptions().device(device).dtype(dtype).requires_grad(true);
  auto q = torch::randn({1, a.heads, n, d}, opts), k = torch::randn({1, a.heads, n, d}, opts),
       v = torch::randn({1, a.heads, n, d}, opts);
  auto once = [&] {
    auto o = compat::scaled_dot_product_attention(q, k, v, {});
    o.backward(torch::ones_like(o));
  };
  once();
  synchronize(device);
  Stopwatch watch;
  for (int64_t i = 0; i < a.depth; ++i) once();
  synchronize(device);
  return watch.seconds() * 1e3;
}

nlohmann::json run_size(const BenchArgs& a, int64_t n, const dist::ProcessGrid& grid, const torch::Device& device,
                        const train::RunPrecision& precision, int steps, int warmup) {
  const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  SPVIT_CHECK(side * side == n, "bench: --tokens ", n, " must be a square number (a square image of P-pixel patches)");
  const int64_t pixels = side * a.patch;
  model::SegmenterOptions o;
  o.encoder.in_features = a.channels * a.patch * a.patch;
  o.encoder.dim = a.dim;
  o.encoder.depth = a.depth;
  o.encoder.heads = a.heads;
  o.encoder.mlp_ratio = a.mlp_ratio;
  o.encoder.max_tokens = n;
  o.encoder.attention = grid.seq_size() > 1 ? model::AttentionStrategy::LssKv : model::AttentionStrategy::Local;
  o.encoder.checkpointing = a.checkpointing;
  o.encoder.attention_backend = a.attention_backend;
  o.channels = a.channels;
  o.patch = a.patch;
  o.classes = a.classes;
  o.decoder_width = a.decoder_width;
  o.decoder_chunk_rows = a.decoder_chunk_rows;
  torch::manual_seed(0);
  model::Segmenter net(o);
  net->to(device);
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : net->named_parameters()) named.emplace_back(item.key(), item.value());
  auto optimizer = train::make_optimizer("adamw", train::decay_groups(named, 0.05), 1e-4, 0.9, 0.999, 1e-8);
  dist::GradientAverager averager(net->parameters(), grid.world(), grid.seq(), grid.data(),
                                  {dist::GradientAverager::Mode::Flat, 25.0});

  const auto bands = model::UniformBands::even({pixels, pixels}, a.patch, grid.seq_size(), grid.seq_index());
  const int64_t row0 = bands.pixel_begin()[0], rows = bands.pixel_end()[0] - row0;
  auto image = torch::randn({1, a.channels, rows, pixels}, torch::TensorOptions().device(device));
  auto mask = torch::randint(0, a.classes, {1, rows, pixels}, torch::TensorOptions().device(device).dtype(torch::kLong));
  double loss_value = 0;
  auto step = [&] {
    optimizer->zero_grad();
    torch::Tensor loss;
    {
      train::ForwardPrecisionGuard autocast(precision);
      auto logits = net->forward_uniform(image, bands, grid.seq());
      loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat), mask);
    }
    loss.backward();
    averager.finish();
    optimizer->step();
    return loss;
  };
  for (int i = 0; i < warmup; ++i) step();
  synchronize(device);
  reset_peak_memory(device);
  Stopwatch watch;
  torch::Tensor last;
  for (int i = 0; i < steps; ++i) last = step();
  synchronize(device);
  const double step_ms = watch.seconds() * 1e3 / steps;
  loss_value = last.item<double>();
  nlohmann::json r;
  r["tokens"] = n;
  r["image_side"] = pixels;
  r["step_ms"] = step_ms;
  r["tokens_per_s"] = static_cast<double>(n) / (step_ms / 1e3);
  r["encoder_tflops"] = encoder_flops(a, n) / (step_ms / 1e3) / 1e12;
  r["peak_gib"] = peak_memory_gib(device);  // the CUDA allocator's peak on a GPU, the process's peak RSS on the CPU
  r["peak_of"] = device.is_cuda() ? "device" : "host RSS";
  r["loss"] = loss_value;
  r["attention_ms"] = attention_only_ms(a, n / grid.seq_size(), device,
                                        precision.autocast ? precision.autocast_dtype : torch::kFloat);
  return r;
}

bool out_of_memory(const std::exception& e) {
  const std::string what = e.what();
  return what.find("out of memory") != std::string::npos || what.find("OutOfMemory") != std::string::npos;
}

void add_bench_command(CLI::App& app, AppContext& ctx) {
  auto* bench = app.add_subcommand("bench", "Performance benchmarks");
  bench->require_subcommand(1);
  auto* train_cmd = bench->add_subcommand("train", "Training-step throughput of ViT + UNETR at several lengths");
  auto a = std::make_shared<BenchArgs>();
  train_cmd->add_option("--tokens", a->tokens, "tokens per sample (square numbers), e.g. 4096 16384 65536")
      ->delimiter(',');
  train_cmd->add_option("--dim", a->dim, "embedding width")->default_val(a->dim);
  train_cmd->add_option("--depth", a->depth, "transformer blocks")->default_val(a->depth);
  train_cmd->add_option("--heads", a->heads, "attention heads")->default_val(a->heads);
  train_cmd->add_option("--mlp-ratio", a->mlp_ratio, "MLP width / dim")->default_val(a->mlp_ratio);
  train_cmd->add_option("--patch", a->patch, "patch side (power of two)")->default_val(a->patch);
  train_cmd->add_option("--decoder-width", a->decoder_width, "decoder channels at full resolution")
      ->default_val(a->decoder_width);
  train_cmd->add_option("--precision", a->precision, "bf16 (autocast on CUDA) or fp32")
      ->default_val(a->precision)->check(CLI::IsMember({"bf16", "fp32"}));
  train_cmd->add_option("--attention-backend", a->attention_backend, "auto, cudnn, flash, efficient, math")
      ->default_val(a->attention_backend)->check(CLI::IsMember({"auto", "cudnn", "flash", "efficient", "math"}));
  train_cmd->add_option("--device", a->device, "auto, cpu, cuda")->default_val(a->device);
  train_cmd->add_option("--steps", a->steps, "timed steps per size")->default_val(a->steps);
  train_cmd->add_option("--warmup", a->warmup, "untimed steps first")->default_val(a->warmup);
  train_cmd->add_flag("--checkpointing", a->checkpointing, "recompute each block in backward");
  train_cmd->add_option("--decoder-chunk-rows", a->decoder_chunk_rows,
                        "decode this many token rows at a time, recomputed in backward (0: all at once)")
      ->check(CLI::NonNegativeNumber)
      ->default_val(a->decoder_chunk_rows);
  train_cmd->add_flag("--find-max", a->find_max, "double the length after the last size until out of memory");
  train_cmd->add_option("--out", a->out, "append one JSON line per size to this file");
  train_cmd->callback([&ctx, a]() {
    ctx.run = [&ctx, a]() {
      auto grid = make_grid({0, ctx.world_size}, 600, a->device, "auto");
      const auto device = select_device(a->device, grid.local_rank());
      const auto precision = bench_precision(a->precision, device);
      if (precision.mode() != a->precision && ctx.world_rank == 0) {
        log::warn("bench train: --precision {} needs a CUDA device and LibTorch >= 2.4; running {} on {}", a->precision,
                  precision.mode(), device.str());
      }
      log::info("bench train: dim {} depth {} heads {} patch {} on {} ({}, attention {}{}{})", a->dim, a->depth,
                a->heads, a->patch, device.str(), precision.mode(), a->attention_backend,
                a->checkpointing ? ", checkpointing" : "",
                a->decoder_chunk_rows > 0 ? fmt::format(", decoder chunks of {} token rows", a->decoder_chunk_rows)
                                          : std::string());
      std::vector<int64_t> sizes = a->tokens;
      auto report = [&](nlohmann::json r) {
        r["device"] = device.str();
        r["precision"] = precision.mode();  // what ran, not what was asked for
        r["checkpointing"] = a->checkpointing;
        r["decoder_chunk_rows"] = a->decoder_chunk_rows;
        r["ranks"] = grid.world_size();
        if (ctx.world_rank == 0) {
          std::printf("%s\n", r.dump().c_str());
          std::fflush(stdout);
          if (!a->out.empty()) std::ofstream(a->out, std::ios::app) << r.dump() << "\n";
        }
      };
      for (size_t i = 0; i < sizes.size(); ++i) {
        try {
          report(run_size(*a, sizes[i], grid, device, precision, a->steps, a->warmup));
        } catch (const std::exception& e) {
          if (!out_of_memory(e)) throw;
          release_cached_memory(device);
          report({{"tokens", sizes[i]}, {"error", "out of memory"}});
          break;
        }
        if (a->find_max && i + 1 == sizes.size()) sizes.push_back(sizes[i] * 4);  // side x2: tokens x4
      }
      return 0;
    };
  });
}

const CommandRegistration bench_registration("bench", add_bench_command);

}  // namespace
}  // namespace spvit::app

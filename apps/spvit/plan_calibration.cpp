// `spvit plan --calibrate`: a machine file (include/spvit/plan/machine.h) from microbenchmarks only — one matmul, the
// attention kernel (on CPUs at several sizes), the decoder alone, one block's element-wise ops, and two collectives —
// never from a full training step, so that the step model's validation against full steps (docs/scaling.md) is a
// test, not a fit.
//
// The shapes come from the configuration (-c / --set, default: the built-in one): its width, heads and token count,
// because on a CPU the achieved rate of a small matmul or of the explicit attention depends on the shape. Every
// number's source says what was measured, where and when. Run it with as many ranks as the node will run (the
// collectives need at least 2, and each rank computes with the threads it will have in training).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "bench_commands.h"
#include "plan_commands.h"
#include "spvit/core/atomic_file.h"
#include "spvit/core/device.h"
#include "spvit/core/device_memory.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/core/timer.h"
#include "spvit/core/torch_compat.h"
#include "spvit/model/decoder.h"
#include "spvit/model/uniform_bands.h"
#include "spvit/plan/machine.h"
#include "spvit/plan/step_model.h"

namespace spvit::app {
namespace {

// Median seconds of `reps` runs of f (after one warm-up), the slowest rank's.
template <class F>
double median_seconds(F&& f, int reps, const torch::Device& device, dist::Communicator& world) {
  f();
  synchronize(device);
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    Stopwatch watch;
    f();
    synchronize(device);
    t.push_back(watch.seconds());
  }
  std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
  auto slowest = torch::full({1}, t[static_cast<size_t>(reps / 2)], torch::kFloat64);
  world.all_reduce(slowest, dist::ReduceOp::Max)->wait();
  return slowest.item<double>();
}

// fwd + bwd of x[M, K] · w[K, N]: 3 matmuls of 2·M·K·N FLOPs.
double matmul_tflops(int64_t M, int64_t K, int64_t N, const torch::TensorOptions& o, const torch::Device& device,
                     dist::Communicator& world) {
  auto x = torch::randn({M, K}, o).requires_grad_(true), w = torch::randn({K, N}, o).requires_grad_(true);
  const double s = median_seconds([&] { torch::matmul(x, w).sum().backward(); }, 5, device, world);
  return 3.0 * 2.0 * static_cast<double>(M * K * N) / s / 1e12;
}

// fwd + bwd of the encoder's attention kernel on [1, H, L, D]: 3 × 4·L²·E FLOPs.
double attention_tflops(int64_t L, int64_t H, int64_t D, const torch::TensorOptions& o, const torch::Device& device,
                        dist::Communicator& world) {
  auto q = torch::randn({1, H, L, D}, o).requires_grad_(true), k = torch::randn({1, H, L, D}, o).requires_grad_(true),
       v = torch::randn({1, H, L, D}, o).requires_grad_(true);
  const double s = median_seconds([&] { compat::scaled_dot_product_attention(q, k, v, {}).sum().backward(); }, 3,
                                  device, world);
  return 3.0 * 4.0 * static_cast<double>(L * L * H * D) / s / 1e12;
}

// The attention kernel on square calls [1, H, l, D], l = 128, 256, ... up to `largest`: the rate against the score
// matrix's size H·l² (MachineSpec::attention_curve). On a CPU the explicit kernel's rate falls by 2x or more once
// the scores leave the caches; the step model reads each strategy's own call size off this curve.
plan::RateCurve attention_curve(int64_t largest, int64_t H, int64_t D, const torch::TensorOptions& o,
                                const torch::Device& device, dist::Communicator& world) {
  plan::RateCurve curve;
  for (int64_t l = 128; l <= largest; l *= 2) {
    curve.points.emplace_back(static_cast<double>(H * l * l), attention_tflops(l, H, D, o, device, world));
  }
  return curve;
}

// The configured decoder, fwd + bwd, on one side^d image and the encoder features it reads (its taps and the last
// block's, random): median seconds and the tokens of that image.
std::pair<double, double> decoder_seconds(const Config& c, int64_t side, int64_t classes, const torch::TensorOptions& o,
                                          const torch::Device& device, dist::Communicator& world) {
  const auto& m = c.model;
  const auto& entry = model::decoders().at(m.decoder);
  auto decoder = entry.make(model::DecoderOptions::from_config(m, classes));
  decoder->to(device, o.dtype().toScalarType());
  std::vector<int64_t> shape(static_cast<size_t>(m.spatial_dims), side);
  const auto bands = model::UniformBands::even(shape, m.patch, 1, 0);
  const int64_t tokens = bands.num_tokens();
  model::DecoderInput in;
  for (size_t k = 0; k <= decoder->taps().size(); ++k) {
    in.features.push_back(torch::randn({1, tokens, m.dim}, o).requires_grad_(true));
  }
  if (entry.uniform_bands) {
    std::vector<int64_t> image{1, m.channels};
    image.insert(image.end(), shape.begin(), shape.end());
    in.image_band = torch::randn(image, o);
    in.bands = &bands;
  }
  const double s = median_seconds([&] { decoder->forward(in).sum().backward(); }, 5, device, world);
  return {s, static_cast<double>(tokens)};
}

// The decoder's terms of the step model (plan::decoder_cost: a fixed time per call, FLOPs at the conv rate, element-
// wise bytes at the bandwidth) from the decoder timed on two image sides: the line through the two times gives the
// fixed part (its intercept: per-call costs of LibTorch's many small ops, which dominate small images on a CPU) and
// the per-token part, whose time left after the element-wise bytes sets the conv rate. A lone convolution says
// nothing of the fixed part or of the mix of small-channel and transposed convolutions, concatenations and halo
// padding, so the decoder itself is the microbenchmark.
struct DecoderFit {
  double tflops = 0, overhead_ms = 0, tokens_small = 0, tokens_large = 0;
};
DecoderFit fit_decoder(const Config& c, int64_t side, int64_t classes, double bandwidth_gbs,
                       const torch::TensorOptions& o, const torch::Device& device, dist::Communicator& world) {
  const auto [t_small, n_small] = decoder_seconds(c, side / 2, classes, o, device, world);
  const auto [t_large, n_large] = decoder_seconds(c, side, classes, o, device, world);
  double per_token = (t_large - t_small) / (n_large - n_small), fixed = t_large - per_token * n_large;
  if (fixed < 0 || per_token <= 0) {  // noise: no fixed part resolvable, charge everything per token
    fixed = 0;
    per_token = t_large / n_large;
  }
  Config one = c;
  one.train.precision = o.dtype() == torch::kFloat ? "fp32" : "bf16";
  const auto cost = plan::decoder_cost(plan::workload_from_config(one, classes), 1.0);  // per token
  // What remains after the element-wise bytes is the convolutions' (never below 10% of the per-token time).
  const double conv_s = std::max(0.1 * per_token, per_token - cost.bytes / (bandwidth_gbs * 1e9));
  return {cost.flops / conv_s / 1e12, fixed * 1e3, n_small, n_large};
}

// The element-wise work of one encoder block, fwd + bwd, at the configuration's shape: two LayerNorms, the MLP's
// GELU on r·E values per token, two residual adds. Expressed as the bandwidth at which the step model's element-wise
// term — 3·(10 + 2r)·L·E·b bytes per block (src/plan/step_model.cpp) — would take this long: on a GPU these kernels
// are bandwidth-bound and this is close to the copy bandwidth; on a CPU GELU and LayerNorm are compute-bound and
// it is much lower.
double elementwise_gbs(int64_t L, int64_t E, double r, const torch::TensorOptions& o, const torch::Device& device,
                       dist::Communicator& world) {
  const int64_t hidden = static_cast<int64_t>(std::llround(r * static_cast<double>(E)));
  auto x = torch::randn({1, L, E}, o).requires_grad_(true), h = torch::randn({1, L, hidden}, o).requires_grad_(true);
  auto w = torch::ones({E}, o).requires_grad_(true), b = torch::zeros({E}, o).requires_grad_(true);
  const double s = median_seconds(
      [&] {
        auto a = torch::layer_norm(x, {E}, w, b) + x;
        auto c = torch::layer_norm(a, {E}, w, b) + a;
        (c.sum() + torch::gelu(h).sum()).backward();
      },
      5, device, world);
  const double bytes = 3.0 * (10.0 + 2.0 * r) * static_cast<double>(L * E) * static_cast<double>(o.dtype().itemsize());
  return bytes / s / 1e9;
}

}  // namespace

int run_calibration(const PlanArgs& a, const AppContext& ctx) {
  SPVIT_CHECK(!a.out.empty(), "plan --calibrate: --out machines/NAME.yaml names the machine file to write");
  const Config c = a.config.empty() ? parse_config("", a.overrides) : load_config(a.config, a.overrides);
  auto grid = make_grid({1, ctx.world_size}, c.dist.timeout_s, c.device, "auto");
  auto& world = *grid.world();
  SPVIT_CHECK(world.size() >= 2, "plan --calibrate measures the links between ranks: start it with 2 or more ranks "
              "on one node (e.g. mpirun -np 2 spvit plan --calibrate ...)");
  const torch::Device device = select_device(c.device, grid.local_rank());
  const std::string precision = device.is_cuda() ? "bf16" : "fp32";
  const auto opts = torch::TensorOptions().device(device).dtype(device.is_cuda() ? torch::kBFloat16 : torch::kFloat);
  const int64_t E = c.model.dim, H = c.model.heads, D = E / H;
  const int64_t L = std::min<int64_t>(plan::tokens_per_sample(c), device.is_cuda() ? 65536 : 4096);
  const std::string when = utc_now() + " on " + host_name() + " (" + std::to_string(world.size()) + " ranks, " +
                           std::to_string(torch::get_num_threads()) + " thread(s) each)";
  auto measured = [&](const std::string& what) { return "measured by spvit plan --calibrate: " + what + ", " + when; };
  if (ctx.world_rank == 0) {
    log::info("plan --calibrate: matmul, attention, conv and copy on {} ({} ranks at once), then collectives",
              device.str(), world.size());
  }
  plan::MachineSpec m;
  m.name = a.name.empty() ? host_name() : a.name;
  m.kind = device.is_cuda() ? "gpu" : "cpu";
  m.description = "calibrated from microbenchmarks on " + host_name() + " for shapes E=" + std::to_string(E) +
                  ", H=" + std::to_string(H) + ", L=" + std::to_string(L);
  const double cores = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
  const double threads = static_cast<double>(torch::get_num_threads());
  m.ranks_per_node = {device.is_cuda() ? static_cast<double>(torch::cuda::device_count()) : std::max(1.0, cores / threads),
                      device.is_cuda() ? "CUDA devices visible on this node" : "online cores / threads per rank"};
  m.cores_per_node = {cores, "sysconf(_SC_NPROCESSORS_ONLN) on " + host_name()};
  m.threads_per_rank = {threads, "torch::get_num_threads() of the calibrating ranks (OMP_NUM_THREADS)"};
  m.memory_gib = {total_memory_bytes(device) / 1073741824.0 / (device.is_cuda() ? 1.0 : m.ranks_per_node.value),
                  device.is_cuda() ? "the device's total memory" : "host memory / ranks_per_node"};
  // Every rank runs the compute microbenchmarks at once: what a rank gets when the node is busy.
  m.memory_bandwidth_gbs = {elementwise_gbs(L, E, c.model.mlp_ratio, opts, device, world),
                            measured("one encoder block's element-wise ops (2 LayerNorms, GELU, residual adds) fwd+bwd "
                                     "at L=" + std::to_string(L) + ", as bytes of the step model's element-wise term")};
  m.matmul_tflops[precision] = {matmul_tflops(L, E, 4 * E, opts, device, world),
                                measured("fwd+bwd of [" + std::to_string(L) + "," + std::to_string(E) + "] x [" +
                                         std::to_string(E) + "," + std::to_string(4 * E) + "]")};
  if (device.is_cuda()) {  // fused attention: one rate serves every size
    m.attention_tflops[precision] = {attention_tflops(L, H, D, opts, device, world),
                                     measured("fwd+bwd of the encoder's attention kernel, L=" + std::to_string(L) +
                                              ", H=" + std::to_string(H) + ", head dim " + std::to_string(D))};
  } else {  // the explicit kernel: its rate depends on whether the scores fit the caches
    constexpr int64_t kLargest = 4096;  // a machine property, not the configuration's: up to what a CPU runs
    auto curve = attention_curve(kLargest, H, D, opts, device, world);
    curve.source = measured("fwd+bwd of the encoder's attention kernel on [1, " + std::to_string(H) + ", l, " +
                            std::to_string(D) + "], l = 128 ... " + std::to_string(kLargest) +
                            " in powers of 2, against H*l^2 score values");
    // The single number (what readers without the curve use) is the curve's at the configuration's L.
    m.attention_tflops[precision] = {curve.at(static_cast<double>(H * L * L)),
                                     "attention_curve at L=" + std::to_string(L) + " (H*L^2 score values)"};
    m.attention_curve[precision] = std::move(curve);
  }
  // The decoder on one image of the configuration's side (at most 256 pixels in 2D, 64 in 3D: a microbenchmark),
  // 4 classes (what bench step's synthetic runs use).
  const int64_t side = std::min<int64_t>(c.model.spatial_dims == 3 ? 64 : 256, c.data.size);
  const auto decoder = fit_decoder(c, side, 4, m.memory_bandwidth_gbs.value, opts, device, world);
  const std::string timed = "fwd+bwd of the " + c.model.decoder + " decoder (width " +
                            std::to_string(c.model.decoder_width) + ", 4 classes) on one image of side " +
                            std::to_string(side / 2) + " and one of side " + std::to_string(side) + " (" +
                            std::to_string(static_cast<int64_t>(decoder.tokens_small)) + " and " +
                            std::to_string(static_cast<int64_t>(decoder.tokens_large)) + " tokens)";
  m.conv_tflops[precision] = {decoder.tflops, measured(timed + ": its counted conv FLOPs per token over the time per "
                                                       "token (the line's slope) less its element-wise bytes at "
                                                       "memory_bandwidth_gbs")};
  if (decoder.overhead_ms > 0) {
    m.decoder_overhead_ms = {decoder.overhead_ms, measured(timed + ": the line's intercept")};
  }
  // The α–β fit of all_gather: a tiny message is all latency; a large one is latency + bus bytes / β.
  const int P = world.size();
  const int64_t small = 8 * P, large = int64_t{8} << 20;
  const double t_small = measure_collective_seconds(world, "all_gather", small, device, 5, 50);
  const double t_large = measure_collective_seconds(world, "all_gather", large, device, 2, 10);
  const double alpha = t_small / (P - 1);
  const double beta = static_cast<double>(large) * (P - 1) / P / std::max(1e-9, t_large - (P - 1) * alpha);
  const std::string fit = "all_gather on " + std::to_string(P) + " ranks, alpha = t(" + std::to_string(small) +
                          " B)/(P-1), beta = bus bytes of 8 MiB / (t - (P-1) alpha)";
  m.intra_node = {{alpha * 1e6, measured(fit)}, {beta / 1e9, measured(fit)}};
  m.inter_node = {{alpha * 1e6, "not measured (one node): intra_node's, replace with the network's"},
                  {beta / 1e9, "not measured (one node): intra_node's, replace with the network's"}};
  if (ctx.world_rank == 0) {
    write_text_atomically(a.out, plan::machine_yaml(m));
    std::printf("%s", plan::machine_yaml(m).c_str());
    log::info("plan --calibrate: wrote {}", a.out);
  }
  return 0;
}

}  // namespace spvit::app

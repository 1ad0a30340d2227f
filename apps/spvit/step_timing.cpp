#include "step_timing.h"

#include <algorithm>
#include <sstream>

#include "spvit/core/device_memory.h"
#include "spvit/core/error.h"
#include "spvit/core/timer.h"
#include "spvit/model/decoder.h"
#include "spvit/train/data_setup.h"
#include "spvit/train/precision.h"

namespace spvit::app {
namespace {

const char* kBenchPhaseNames[kBenchPhases] = {
    "waiting for the loader", "batch assembly (stack, dtype)", "encoder forward (with patch extraction)",
    "decoder forward", "loss (CE + Dice)", "decoder backward", "encoder backward", "gradient averaging (finish)",
    "finiteness check (one all-reduce)", "clipping", "optimiser step", "metrics (world means)"};

BenchPhase bench_phase_of(train::StepPhase p) {
  switch (p) {
    case train::StepPhase::Batch: return kBatch;
    case train::StepPhase::Forward: return kDecoderForward;  // less the encoder's share, see time_steps
    case train::StepPhase::Loss: return kLoss;
    case train::StepPhase::Backward: return kEncoderBackward;  // after the boundary hook's decoder share
    case train::StepPhase::GradAverage: return kGradAverage;
    case train::StepPhase::Check: return kCheck;
    case train::StepPhase::Clip: return kClip;
    case train::StepPhase::Optimizer: return kOptimizer;
    case train::StepPhase::Metrics: return kMetrics;
  }
  return kMetrics;
}

// Patch extraction + the model's own encoder on this rank's band of `batch`, as forward_uniform runs them: the
// encoder's share of the step's forward, which has no mark of its own inside the model.
void encoder_forward(train::TrainingParts& parts, const Config& config, const dist::ProcessGrid& grid,
                     const data::Batch& batch) {
  const auto& precision = parts.precision;
  auto images = train::stack_batch(batch.samples).first.to(precision.device, precision.param_dtype);
  const auto bands = train::bands_for(batch.samples[0].full_shape, config, grid);
  const auto in = parts.model->uniform_encoder_input(images, bands, grid.seq());
  train::ForwardPrecisionGuard autocast(precision);
  parts.model->encoder()->forward(in.tokens, in.meta, in.seq);
}

std::vector<double> world_reduce(const dist::ProcessGrid& grid, std::vector<double> values, dist::ReduceOp op) {
  auto t = torch::tensor(values, torch::kFloat64);
  grid.world()->all_reduce(t, op)->wait();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

}  // namespace

const char* bench_phase_name(int phase) { return kBenchPhaseNames[phase]; }

StepTiming time_steps(train::TrainingParts& parts, const Config& config, const dist::ProcessGrid& grid,
                      const std::shared_ptr<dist::CommStats>& stats, const std::function<data::Batch()>& next_batch,
                      const StepTimingOptions& options) {
  const auto device = parts.precision.device;
  StepTiming out;
  Stopwatch clock;
  double last = 0, last_comm = 0;
  std::vector<double> time(kBenchPhases), comm(kBenchPhases);
  auto restart = [&] {  // the clock of the current phase starts now
    if (options.split) synchronize(device);
    last = clock.seconds();
    last_comm = stats->total_seconds();
  };
  int64_t encoder_calls = -1;  // tracing: the calls of the encoder's forward (-1: not known)
  auto mark = [&](int phase) {
    if (options.split) synchronize(device);
    // The calls since the previous mark belong to this phase. Inside the step the forward pass is one phase; its
    // first `encoder_calls` calls are the encoder's (the probe below made exactly those on the same batch).
    int64_t forward_seen = 0;
    for (auto& e : stats->trace) {
      if (!e.phase.empty()) continue;
      if (phase == kDecoderForward) {
        e.phase = encoder_calls < 0 ? "model forward"
                                    : forward_seen++ < encoder_calls ? "encoder forward" : "decoder forward";
      } else {
        e.phase = bench_phase_name(phase);
      }
    }
    const double now = clock.seconds(), c = stats->total_seconds();
    time[phase] += now - last;
    comm[phase] += c - last_comm;
    last = now;
    last_comm = c;
  };

  // The encoder's final LayerNorm weight gets its gradient when the decoder's backward is done (on the CPU autograd
  // runs the ready node recorded last first, and every decoder node was recorded after every encoder node).
  torch::Tensor boundary;
  for (const auto& p : parts.model->named_parameters()) {
    if (p.key() == "encoder.norm.weight") boundary = p.value();
  }
  SPVIT_CHECK(boundary.defined(), "bench step: the model has no parameter 'encoder.norm.weight'");
  bool boundary_seen = false;
  // The phase mark and the hook refer to this function's locals: removed on every way out (an exception included).
  struct Instrumented {
    train::TrainStep& step;
    torch::Tensor boundary;
    unsigned hook;
    ~Instrumented() {
      boundary.remove_hook(hook);
      step.set_phase_mark(nullptr);
    }
  } instrumented{*parts.step, boundary, boundary.register_hook([&](torch::Tensor) {
                   if (options.split) mark(kDecoderBackward);
                   boundary_seen = true;
                 })};
  if (options.split) parts.step->set_phase_mark([&](train::StepPhase p) { mark(bench_phase_of(p)); });
  const bool encoder_alone = options.split && model::decoders().at(config.model.decoder).uniform_bands;
  out.encoder_forward_split = encoder_alone;

  dist::CommStats before, probe;
  int64_t counted = 0;  // timed steps that updated the model (a skipped step ends early and would skew the means)
  for (int64_t s = 0; s < options.warmup + options.steps; ++s) {
    const bool timed = s >= options.warmup;
    if (s == options.warmup) {
      before = *stats;
      synchronize(device);
      reset_peak_memory(device);
    }
    std::fill(time.begin(), time.end(), 0.0);
    std::fill(comm.begin(), comm.end(), 0.0);
    const bool traced = options.trace != nullptr && s + 1 == options.warmup + options.steps;
    stats->trace.clear();
    clock.reset();
    restart();
    const auto batch = next_batch();
    mark(kLoaderWait);
    double encoder_s = 0, encoder_comm = 0;
    if (encoder_alone) {  // outside the step's clock: its time moves from the decoder row to the encoder row
      stats->tracing = traced;  // counts the encoder's calls (discarded below)
      const dist::CommStats at = *stats;
      Stopwatch watch;
      encoder_forward(parts, config, grid, batch);
      synchronize(device);
      encoder_s = watch.seconds();
      encoder_comm = stats->total_seconds() - at.total_seconds();
      if (timed) probe.add(*stats, at);
      if (traced) encoder_calls = static_cast<int64_t>(stats->trace.size());
      stats->trace.clear();
      clock.reset();
      restart();
    }
    stats->tracing = traced;  // the step itself (the probe's calls were only counted)
    const bool measure = options.memory && reset_process_peak_rss();
    const double resident = measure ? process_memory_bytes("VmRSS:") : 0.0;
    boundary_seen = false;
    const auto result = parts.step->run(batch, s);
    if (!options.split) {  // whole steps only: the step's time lands in one row
      synchronize(device);   // the optimiser's kernels may still run on a GPU
      mark(kMetrics);
    }
    SPVIT_CHECK(boundary_seen, "bench step: the encoder's final LayerNorm received no gradient");
    if (measure) out.peak_above_bytes = std::max(out.peak_above_bytes, process_memory_bytes("VmHWM:") - resident);
    time[kEncoderForward] += encoder_s;
    comm[kEncoderForward] += encoder_comm;
    time[kDecoderForward] -= encoder_s;
    comm[kDecoderForward] -= encoder_comm;
    if (!timed) continue;
    if (!result.finite) {
      ++out.skipped_steps;
      continue;
    }
    ++counted;
    for (int p = 0; p < kBenchPhases; ++p) {
      out.phase_s[p] += time[p];
      out.comm_s[p] += comm[p];
    }
    out.loss = result.loss;
    out.tokens = result.tokens;
    out.batch_samples = static_cast<int64_t>(batch.samples.size());
  }
  stats->tracing = false;
  if (options.trace != nullptr) *options.trace = std::move(stats->trace);
  stats->trace.clear();
  SPVIT_CHECK(counted > 0, "bench step: every one of the ", options.steps, " timed steps was skipped (non-finite loss or "
              "gradients, or fp16 overflow): nothing to time");
  for (int p = 0; p < kBenchPhases; ++p) {
    out.phase_s[p] /= static_cast<double>(counted);
    out.comm_s[p] /= static_cast<double>(counted);
  }
  out.peak_gib = peak_memory_gib(device);
  for (double t : out.phase_s) out.step_s += t;
  const auto n = static_cast<double>(options.steps);
  for (size_t k = 0; k < dist::CommStats::kOps; ++k) {
    out.ops.calls[k] = static_cast<int64_t>((stats->calls[k] - before.calls[k] - probe.calls[k]) / n);
    out.ops.bytes[k] = static_cast<int64_t>((stats->bytes[k] - before.bytes[k] - probe.bytes[k]) / n);
    out.ops.bytes_sent[k] =
        static_cast<int64_t>((stats->bytes_sent[k] - before.bytes_sent[k] - probe.bytes_sent[k]) / n);
    out.ops.bytes_received[k] =
        static_cast<int64_t>((stats->bytes_received[k] - before.bytes_received[k] - probe.bytes_received[k]) / n);
    out.ops.seconds[k] = (stats->seconds[k] - before.seconds[k] - probe.seconds[k]) / n;
  }
  return out;
}

StepTiming average_over_world(const StepTiming& local, const dist::ProcessGrid& grid) {
  constexpr size_t kOps = dist::CommStats::kOps;
  std::vector<double> v{local.step_s};
  v.insert(v.end(), local.phase_s.begin(), local.phase_s.end());
  v.insert(v.end(), local.comm_s.begin(), local.comm_s.end());
  for (size_t k = 0; k < kOps; ++k) {
    v.push_back(static_cast<double>(local.ops.calls[k]));
    v.push_back(static_cast<double>(local.ops.bytes[k]));
    v.push_back(static_cast<double>(local.ops.bytes_sent[k]));
    v.push_back(static_cast<double>(local.ops.bytes_received[k]));
    v.push_back(local.ops.seconds[k]);
  }
  const auto sum = world_reduce(grid, v, dist::ReduceOp::Sum);
  const double n = grid.world_size();
  StepTiming out = local;
  size_t i = 0;
  out.step_s = sum[i++] / n;
  for (auto& t : out.phase_s) t = sum[i++] / n;
  for (auto& t : out.comm_s) t = sum[i++] / n;
  for (size_t k = 0; k < kOps; ++k) {
    out.ops.calls[k] = static_cast<int64_t>(sum[i++] / n);
    out.ops.bytes[k] = static_cast<int64_t>(sum[i++] / n);
    out.ops.bytes_sent[k] = static_cast<int64_t>(sum[i++] / n);
    out.ops.bytes_received[k] = static_cast<int64_t>(sum[i++] / n);
    out.ops.seconds[k] = sum[i++] / n;
  }
  const auto peaks = world_reduce(grid, {local.peak_above_bytes, local.peak_gib}, dist::ReduceOp::Max);
  out.peak_above_bytes = peaks[0];
  out.peak_gib = peaks[1];
  return out;
}

std::string phase_table(const StepTiming& t) {
  std::ostringstream s;
  s << "| phase | ms/step | of which communication ms | share of step |\n|---|---|---|---|\n";
  double comm = 0;
  char line[256];
  for (int p = 0; p < kBenchPhases; ++p) {
    if (p == kEncoderForward && !t.encoder_forward_split) continue;
    const char* name = p == kDecoderForward && !t.encoder_forward_split ? "model forward (encoder + decoder)"
                                                                          : bench_phase_name(p);
    std::snprintf(line, sizeof line, "| %s | %.2f | %.2f | %.1f%% |\n", name, 1e3 * t.phase_s[p],
                  1e3 * t.comm_s[p], 100.0 * t.phase_s[p] / t.step_s);
    s << line;
    comm += t.comm_s[p];
  }
  std::snprintf(line, sizeof line, "| **step** | **%.2f** | **%.2f** | 100%% |\n", 1e3 * t.step_s, 1e3 * comm);
  s << line;
  return s.str();
}

std::string collectives_table(const StepTiming& t) {
  std::ostringstream s;
  s << "| collective | calls/step | MB/step | ms/step |\n|---|---|---|---|\n";
  char line[256];
  for (size_t k = 0; k < dist::CommStats::kOps; ++k) {
    if (t.ops.calls[k] == 0) continue;
    std::snprintf(line, sizeof line, "| %s | %lld | %.3f | %.2f |\n",
                  dist::op_name(static_cast<dist::CollectiveOp>(k)), static_cast<long long>(t.ops.calls[k]),
                  static_cast<double>(t.ops.bytes[k]) / 1e6, 1e3 * t.ops.seconds[k]);
    s << line;
  }
  return s.str();
}

}  // namespace spvit::app

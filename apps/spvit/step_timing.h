// `spvit bench step`'s measurement: runs the training step that `spvit train` runs (train::TrainStep, built by
// train::make_training_parts) on batches and splits each step's time into phases, with the communication time
// inside each phase (dist::TimedCommunicator wraps the grid's communicators), the collectives per step, and
// optionally the step's peak memory above the resident set before it. docs/benchmarks.md explains the table.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/data/loader.h"
#include "spvit/dist/process_grid.h"
#include "spvit/dist/timed_communicator.h"
#include "spvit/train/train_step.h"

namespace spvit::app {

// Rows of the time split, in the order a step runs them.
enum BenchPhase {
  kLoaderWait,      // next_batch() before the step
  kBatch,           // batch assembly (stack, pinned copy, dtype)
  kEncoderForward,  // patch extraction + encoder (uniform-band models: measured by an encoder-only forward)
  kDecoderForward,  // the rest of the model forward (tile models: the whole forward)
  kLoss,
  kDecoderBackward,  // backward until the encoder's final LayerNorm weight has its gradient
  kEncoderBackward,
  kGradAverage,  // GradientAverager::finish (buckets not yet reduced during backward)
  kCheck,        // finiteness + the step's one flag all-reduce
  kClip,
  kOptimizer,
  kMetrics,  // the two world means
  kBenchPhases
};
const char* bench_phase_name(int phase);

struct StepTimingOptions {
  int64_t warmup = 3, steps = 10;
  bool split = true;    // mark phases (synchronising a GPU at each mark); off: whole steps only
  bool memory = false;  // peak resident set above the pre-step one (CPU; see docs/benchmarks.md)
  // Not null: every collective of the last timed step, in order, each with its phase (needs split).
  std::vector<dist::TraceEvent>* trace = nullptr;
};

// Means over the timed steps of this rank (world means after average_over_world).
struct StepTiming {
  double step_s = 0;                                  // whole step including the loader wait
  std::vector<double> phase_s = std::vector<double>(kBenchPhases, 0.0);
  std::vector<double> comm_s = std::vector<double>(kBenchPhases, 0.0);
  dist::CommStats ops;             // per step
  double loss = 0;                 // the last step's world-mean loss
  double tokens = 0;               // tokens per step over all data groups (TrainStep's count)
  int64_t batch_samples = 0;       // samples per step on this rank
  double peak_above_bytes = 0;     // with memory: the largest step peak above its starting resident set
  bool encoder_forward_split = false;  // the encoder's forward has its own row (uniform-band models, split runs)
  int64_t skipped_steps = 0;      // timed steps the step skipped (non-finite, fp16 overflow): left out of the means
  double peak_gib = 0;             // peak_memory_gib over the timed steps (a GPU's allocator, else the process RSS)
};

// Runs warmup + steps steps of `parts` on next_batch()'s batches. `stats` must be the stats of the communicators in
// the grid that `parts` was built on. Every rank must call it (the step's collectives).
StepTiming time_steps(train::TrainingParts& parts, const Config& config, const dist::ProcessGrid& grid,
                      const std::shared_ptr<dist::CommStats>& stats, const std::function<data::Batch()>& next_batch,
                      const StepTimingOptions& options);

// Means of every field over the world (the peak: the largest), the same on every rank.
StepTiming average_over_world(const StepTiming& local, const dist::ProcessGrid& grid);

// The markdown tables (phases, collectives) of a world-averaged timing.
std::string phase_table(const StepTiming& timing);
std::string collectives_table(const StepTiming& timing);

}  // namespace spvit::app

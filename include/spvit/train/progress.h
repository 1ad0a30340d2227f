// Rank 0's view of a training run on a terminal: one line redrawn in place with step/total, a bar, loss, lr,
// tokens/s and the estimated time left. Off a terminal (CI, log files, pipes) nothing is drawn and the trainer keeps
// its plain per-step log lines, so logs stay line-oriented and greppable.
#pragma once
#include <cstdint>
#include <string>

namespace spvit::train {

struct ProgressState {
  int64_t step = 0, total = 0;   // optimiser steps done / to do
  double loss = 0, lr = 0, tokens_per_s = 0;
  double eta_s = -1;             // seconds left; < 0 = unknown yet
};

// "step  12/150 [====>        ]   8% | loss 0.81234 | lr 1.20e-03 | 5.3k tok/s | ETA 1m23s" (`bar` characters wide).
std::string format_progress(const ProgressState& state, int bar = 24);
// "45s", "12m03s", "3h07m".
std::string format_duration(double seconds);

// Whether rank 0 should draw for train.progress = auto | on | off. auto: stderr (where spdlog writes) is a terminal,
// or stdout is one and the process has a controlling terminal — the case of `mpirun` started from a shell, which
// gives its ranks a pseudo-terminal for stdout and a pipe for stderr (and a pseudo-terminal even when its own output
// is redirected, hence the controlling-terminal test, which fails in CI and batch jobs).
bool progress_wanted(const std::string& mode);

class ProgressBar {
 public:
  // Draws only when `enabled` (the trainer passes: world rank 0 and stderr_is_terminal()). `first_step` is the step
  // the run starts from (after a resume), so the ETA uses this run's pace only.
  ProgressBar(int64_t total, int64_t first_step, bool enabled);
  ~ProgressBar();
  bool enabled() const { return enabled_; }
  void update(int64_t step, double loss, double lr, double tokens_per_s);
  // Erases the line so that a log message can be printed; the next update draws it again.
  void clear();
  // Leaves the last drawn line in place and moves to the next one.
  void finish();

 private:
  int64_t total_, first_step_;
  bool enabled_;
  bool drawn_ = false;
  double start_s_;
};

}  // namespace spvit::train

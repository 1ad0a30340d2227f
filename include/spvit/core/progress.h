// Rank 0's view of a long run on a terminal (training steps, inference tiles): one line redrawn in place with
// done/total, a bar, the caller's figures and the estimated time left. Off a terminal (CI, log files, pipes) nothing
// is drawn and the caller keeps its plain log lines, so logs stay line-oriented and greppable.
#pragma once
#include <cstdint>
#include <string>

namespace spvit {

// "step  12/150 [====>        ]   8% | <details> | ETA 1m23s" (`label` = "step", `bar` characters wide; no
// " | <details>" when details is empty; "ETA ?" while eta_s < 0).
std::string format_progress_line(const std::string& label, int64_t done, int64_t total, const std::string& details,
                                 double eta_s, int bar = 24);
// "45s", "12m03s", "3h07m".
std::string format_duration(double seconds);
// 950 -> "950", 5300 -> "5.3k", 2.1e6 -> "2.1M".
std::string human_rate(double value);

// Whether rank 0 should draw for a progress mode auto | on | off. auto: stderr (where spdlog writes) is a terminal,
// or stdout is one and the process has a controlling terminal — the case of `mpirun` started from a shell, which
// gives its ranks a pseudo-terminal for stdout and a pipe for stderr (and a pseudo-terminal even when its own output
// is redirected, hence the controlling-terminal test, which fails in CI and batch jobs).
bool progress_wanted(const std::string& mode);

class ProgressBar {
 public:
  // Draws only when `enabled` (callers pass: world rank 0 and progress_wanted(mode)). `first` is where this run
  // starts (the step after a resume), so the ETA uses this run's pace only.
  ProgressBar(std::string label, int64_t total, int64_t first, bool enabled);
  ~ProgressBar();
  bool enabled() const { return enabled_; }
  void update(int64_t done, const std::string& details);
  // Erases the line so that a log message can be printed; the next update draws it again.
  void clear();
  // Leaves the last drawn line in place and moves to the next one.
  void finish();
  // Seconds since construction, and the seconds left at `done` at this run's pace so far (< 0 before any progress).
  double elapsed_s() const;
  double eta_s(int64_t done) const;

 private:
  std::string label_;
  int64_t total_, first_;
  bool enabled_;
  bool drawn_ = false;
  double start_s_;
};

}  // namespace spvit

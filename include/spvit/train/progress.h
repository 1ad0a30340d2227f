// The trainer's progress line: the generic bar (core/progress.h) with the loss, learning rate and tokens/s.
#pragma once
#include <cstdint>
#include <string>

#include "spvit/core/progress.h"

namespace spvit::train {

struct ProgressState {
  int64_t step = 0, total = 0;   // optimiser steps done / to do
  double loss = 0, lr = 0, tokens_per_s = 0;
  double eta_s = -1;             // seconds left; < 0 = unknown yet
};

// "loss 0.81234 | lr 1.20e-03 | 5.3k tok/s": what the trainer's bar shows after the percentage.
std::string training_progress_details(double loss, double lr, double tokens_per_s);
// "step  12/150 [====>        ]   8% | loss 0.81234 | lr 1.20e-03 | 5.3k tok/s | ETA 1m23s" (`bar` characters wide).
std::string format_progress(const ProgressState& state, int bar = 24);

}  // namespace spvit::train

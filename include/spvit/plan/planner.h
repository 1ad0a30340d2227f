// `spvit plan`'s choice (docs/scaling.md, "Performance model"): every grid N_d x N_s of the job's ranks, every
// strategy that can run on it, with and without activation checkpointing, predicted by the step model; the fastest
// one that fits memory wins, and the reasons say why it beat the others.
#pragma once
#include <string>
#include <vector>

#include "spvit/plan/step_model.h"

namespace spvit::plan {

struct Plan {
  std::vector<Prediction> candidates;  // fastest first; those that do not fit memory last
  std::vector<std::string> reasons;    // for candidates.front(), or why nothing fits
  int64_t batch = 1;                   // B per data group
  bool any_fits() const { return !candidates.empty() && candidates.front().fits; }
};

// The candidates for `ranks` ranks: N_s a divisor of ranks (at most the tokens); strategies local (N_s = 1), lss-kv,
// lss-x, ulysses (N_s <= heads), ring, hybrid (Ulysses groups of one node's ranks, when N_s spans several nodes).
std::vector<Candidate> candidates_for(const Workload& w, const MachineSpec& m, int ranks);

// max_global_batch > 0: only grids with N_d·B <= it (a fixed global batch moves ranks into the sequence group).
Plan make_plan(const Workload& w, const MachineSpec& m, int ranks, int64_t max_global_batch = 0);

}  // namespace spvit::plan

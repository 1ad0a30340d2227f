#include "spvit/plan/planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace spvit::plan {
namespace {

std::string format(const char* fmt, double a, double b = 0, double c = 0) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), fmt, a, b, c);
  return buf;
}

constexpr double kGiB = 1073741824.0;

// Why `best` won: memory, where its sequence group runs, compute vs communication, and the runners-up.
std::vector<std::string> reasons_for(const Plan& plan, const MachineSpec& m) {
  std::vector<std::string> why;
  const auto& best = plan.candidates.front();
  const auto& c = best.candidate;
  why.push_back(format("fits memory: %.1f GiB of %.0f GiB per rank (90%% usable)", best.memory.total() / kGiB,
                       m.memory_gib.value));
  if (c.seq == 1) {
    why.push_back("N_s = 1: a whole sample fits one rank, so no per-layer collectives; every rank is data-parallel");
  } else {
    const int per_node = m.ranks_per_node_int();
    why.push_back(std::string("N_s = ") + std::to_string(c.seq) + ": " +
                  (c.seq <= per_node || m.kind == "cpu" ? "the sequence group stays inside a node"
                                                        : "the sequence group spans " +
                                                              std::to_string((c.seq + per_node - 1) / per_node) +
                                                              " nodes (the per-layer collectives cross the network)"));
    // The smaller sequence groups that lost, and why.
    for (const auto& p : plan.candidates) {
      if (p.candidate.seq < c.seq && !p.fits) {
        why.push_back(format("a smaller sequence group does not fit: N_s = %.0f needs %.1f GiB per rank",
                             static_cast<double>(p.candidate.seq), p.memory.total() / kGiB));
        break;
      }
    }
  }
  why.push_back(format("global batch N_d x B = %.0f samples per step (--max-global-batch caps it, which moves ranks "
                       "into the sequence group)", static_cast<double>(c.data) * static_cast<double>(plan.batch)));
  const double comm = best.comm_ms / best.step_ms;
  why.push_back(format("step %.1f ms predicted: compute %.1f ms, communication %.1f ms", best.step_ms,
                       best.compute_ms(), best.comm_ms) +
                (comm > 0.5 ? " (communication-bound)" : comm > 0.2 ? " (communication matters)" : " (compute-bound)"));
  if (c.checkpointing) {
    for (const auto& p : plan.candidates) {
      const auto& o = p.candidate;
      if (!o.checkpointing && o.seq == c.seq && o.strategy == c.strategy && !p.fits) {
        why.push_back(format("checkpointing on: without it the step needs %.1f GiB per rank", p.memory.total() / kGiB));
        break;
      }
    }
  } else {
    why.push_back("checkpointing off: memory fits without recomputing each block (recomputation costs ~1/3 more "
                  "compute)");
  }
  int listed = 0;
  for (size_t i = 1; i < plan.candidates.size() && listed < 3; ++i) {
    const auto& p = plan.candidates[i];
    if (!p.fits) break;
    if (p.candidate.strategy == c.strategy && p.candidate.seq == c.seq) continue;
    why.push_back("next: " + p.candidate.describe() +
                  format(": %.1f%% fewer samples/s (step %.1f ms)", 100.0 * (1.0 - p.samples_per_s / best.samples_per_s),
                         p.step_ms));
    ++listed;
  }
  return why;
}

}  // namespace

std::vector<Candidate> candidates_for(const Workload& w, const MachineSpec& m, int ranks) {
  std::vector<Candidate> out;
  const int per_node = m.ranks_per_node_int();
  for (int seq = 1; seq <= ranks; ++seq) {
    if (ranks % seq != 0 || seq > w.tokens) continue;
    std::vector<Candidate> here;
    auto add = [&](const std::string& strategy, int64_t ulysses = 0, const std::string& outer = "lss-kv") {
      for (bool ckpt : {false, true}) {
        Candidate c;
        c.data = ranks / seq;
        c.seq = seq;
        c.strategy = strategy;
        c.ulysses_size = ulysses;
        c.hybrid_outer = outer;
        c.checkpointing = ckpt;
        out.push_back(c);
      }
    };
    if (seq == 1) {
      add("local");
      continue;
    }
    add("lss-kv");
    add("lss-x");
    add("ring");
    if (seq <= w.model.heads) add("ulysses");
    // hybrid: Ulysses inside a node, lss-kv or ring across nodes (only where the group spans nodes).
    if (m.kind == "gpu" && seq > per_node && seq % per_node == 0 && per_node <= w.model.heads) {
      add("hybrid", per_node, "lss-kv");
      add("hybrid", per_node, "ring");
    }
  }
  return out;
}

Plan make_plan(const Workload& w, const MachineSpec& m, int ranks, int64_t max_global_batch) {
  Plan plan;
  plan.batch = w.batch;
  for (const auto& c : candidates_for(w, m, ranks)) {
    if (max_global_batch > 0 && c.data * w.batch > max_global_batch) continue;
    plan.candidates.push_back(predict(w, m, c, ranks));
  }
  // Fitting first; then the most samples per second; ties (within 1%) to fewer sequence ranks and no recomputation.
  std::stable_sort(plan.candidates.begin(), plan.candidates.end(), [](const Prediction& a, const Prediction& b) {
    if (a.fits != b.fits) return a.fits;
    if (!a.fits) return a.memory.total() < b.memory.total();
    if (std::abs(a.samples_per_s - b.samples_per_s) > 0.01 * std::max(a.samples_per_s, b.samples_per_s)) {
      return a.samples_per_s > b.samples_per_s;
    }
    if (a.candidate.seq != b.candidate.seq) return a.candidate.seq < b.candidate.seq;
    return !a.candidate.checkpointing && b.candidate.checkpointing;
  });
  if (plan.any_fits()) {
    plan.reasons = reasons_for(plan, m);
  } else if (!plan.candidates.empty()) {
    const auto& least = plan.candidates.front();
    plan.reasons.push_back("nothing fits: the smallest need is " +
                          format("%.1f GiB per rank", least.memory.total() / kGiB) + " (" +
                          least.candidate.describe() + ") against " + format("%.0f GiB", m.memory_gib.value) +
                          "; use more ranks, a smaller model or fewer tokens");
  }
  return plan;
}

}  // namespace spvit::plan

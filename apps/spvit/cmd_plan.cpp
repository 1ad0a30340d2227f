// `spvit plan`: predicts one training step — time and memory per rank — for every grid, strategy and checkpointing
// choice of a job on a machine (src/plan/step_model.cpp), and recommends the fastest that fits, with its reasons.
//   spvit plan -c configs/X.yaml --machine machines/frontier.yaml --nodes 64
//   mpirun -np 2 spvit plan --calibrate --out machines/mine.yaml      (microbenchmarks -> machine file)
//   spvit plan --validate measured.jsonl --machine machines/mine.yaml (predictions vs measured bench step rows)
// Planning itself runs no kernels and no collectives: one process, milliseconds.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app_context.h"
#include "plan_commands.h"
#include "spvit/core/error.h"
#include "spvit/plan/planner.h"

namespace spvit::app {
namespace {

constexpr double kGiB = 1073741824.0;

nlohmann::json prediction_json(const plan::Prediction& p) {
  const auto& c = p.candidate;
  nlohmann::json comm = nlohmann::json::array();
  for (const auto& part : p.collectives) {
    comm.push_back({{"op", part.op}, {"group", part.group}, {"ranks", part.ranks}, {"across_nodes", part.across_nodes},
                    {"calls", part.calls}, {"bus_bytes", part.bus_bytes}, {"ms", part.ms}});
  }
  return {{"strategy", c.strategy}, {"grid", std::to_string(c.data) + "x" + std::to_string(c.seq)},
          {"ulysses_size", c.ulysses_size}, {"hybrid_outer", c.hybrid_outer}, {"checkpointing", c.checkpointing},
          {"ranks", p.ranks}, {"nodes", p.nodes}, {"oversubscription", p.oversubscription},
          {"step_ms", p.step_ms}, {"compute_ms", p.compute_ms()}, {"comm_ms", p.comm_ms},
          {"split_ms", {{"linear", p.linear_ms}, {"attention", p.attention_ms}, {"elementwise", p.elementwise_ms},
                        {"decoder", p.decoder_ms}, {"optimizer", p.optimizer_ms}}},
          {"collectives", comm}, {"samples_per_s", p.samples_per_s}, {"model_tflops", p.model_tflops},
          {"memory_gib", p.memory.total() / kGiB},
          {"memory_split_gib", {{"weights_and_optimizer", p.memory.weights_and_optimizer / kGiB},
                                {"encoder", p.memory.encoder / kGiB},
                                {"attention_scores", p.memory.attention_scores / kGiB},
                                {"decoder", p.memory.decoder / kGiB}}},
          {"fits", p.fits}};
}

// The --set flags that run candidate `c`.
std::string set_flags(const plan::Candidate& c) {
  std::string s = "--set grid.data=" + std::to_string(c.data) + " --set grid.seq=" + std::to_string(c.seq) +
                  " --set model.attention=" + c.strategy +
                  " --set model.checkpointing=" + (c.checkpointing ? "true" : "false");
  if (c.strategy == "hybrid") {
    s += " --set dist.ulysses_size=" + std::to_string(c.ulysses_size) + " --set dist.hybrid_outer=" + c.hybrid_outer;
  }
  return s;
}

int run_plan(const PlanArgs& a, const AppContext& ctx) {
  SPVIT_CHECK(!a.machine.empty(), "plan: --machine machines/NAME.yaml is required (see machines/)");
  const auto machine = plan::load_machine(a.machine);
  int ranks = a.ranks;
  if (a.nodes > 0) {
    const int from_nodes = a.nodes * machine.ranks_per_node_int();
    SPVIT_CHECK(ranks == 0 || ranks == from_nodes, "plan: --ranks ", ranks, " is not --nodes ", a.nodes, " x ",
                machine.ranks_per_node_int(), " ranks per node of ", machine.name);
    ranks = from_nodes;
  }
  SPVIT_CHECK(ranks >= 1, "plan: say how many ranks with --ranks N or --nodes N");
  const Config c = a.config.empty() ? parse_config("", a.overrides) : load_config(a.config, a.overrides);
  auto w = plan::workload_from_config(c, a.classes);
  if (!a.precision.empty()) plan::set_precision(w, a.precision);
  const auto p = plan::make_plan(w, machine, ranks, a.max_global_batch);
  SPVIT_CHECK(!p.candidates.empty(), "plan: no grid of ", ranks, " ranks has N_d x B <= --max-global-batch ",
              a.max_global_batch);
  if (ctx.world_rank != 0) return p.any_fits() ? 0 : 1;
  const auto& m = w.model;
  std::printf("spvit plan: %s on %d ranks of %s (%d node(s) of %d)\n",
              a.config.empty() ? "built-in defaults" : a.config.c_str(), ranks, machine.name.c_str(),
              (ranks + machine.ranks_per_node_int() - 1) / machine.ranks_per_node_int(), machine.ranks_per_node_int());
  std::printf("workload: L = %lld tokens per sample, batch %lld per data group, E=%lld D=%lld H=%lld r=%g P=%lld, "
              "decoder %s, %.1f M parameters, %s\n\n",
              static_cast<long long>(w.tokens), static_cast<long long>(w.batch), static_cast<long long>(m.dim),
              static_cast<long long>(m.depth), static_cast<long long>(m.heads), m.mlp_ratio,
              static_cast<long long>(m.patch), m.decoder.c_str(), w.params / 1e6, w.precision.c_str());
  std::printf("| strategy | grid | ckpt | step ms | compute ms | comm ms | memory GiB | fits | samples/s | "
              "TFLOP/s per rank |\n|---|---|---|---|---|---|---|---|---|---|\n");
  int shown = 0;
  for (const auto& q : p.candidates) {
    if (shown++ >= a.top) break;
    const auto& cd = q.candidate;
    std::printf("| %s | %lldx%lld | %s | %.1f | %.1f | %.1f | %.2f | %s | %.3g | %.1f |\n",
                (cd.strategy == "hybrid" ? "hybrid(u=" + std::to_string(cd.ulysses_size) + "," + cd.hybrid_outer + ")"
                                         : cd.strategy).c_str(),
                static_cast<long long>(cd.data), static_cast<long long>(cd.seq), cd.checkpointing ? "yes" : "no",
                q.step_ms, q.compute_ms(), q.comm_ms, q.memory.total() / kGiB, q.fits ? "yes" : "NO",
                q.samples_per_s, q.model_tflops / q.ranks);
  }
  if (static_cast<int>(p.candidates.size()) > a.top) {
    std::printf("(%zu more; --top N shows more)\n", p.candidates.size() - static_cast<size_t>(a.top));
  }
  if (p.any_fits()) {
    std::printf("\nrecommended: %s\n  spvit train -c %s %s\n", p.candidates.front().candidate.describe().c_str(),
                a.config.empty() ? "CONFIG" : a.config.c_str(), set_flags(p.candidates.front().candidate).c_str());
  } else {
    std::printf("\nno candidate fits memory\n");
  }
  for (const auto& reason : p.reasons) std::printf("  - %s\n", reason.c_str());
  if (!a.out.empty()) {
    std::ofstream out(a.out, std::ios::app);
    SPVIT_CHECK(out.good(), "plan: cannot open --out '", a.out, "' for appending");
    for (const auto& q : p.candidates) {
      auto row = prediction_json(q);
      row["machine"] = machine.name;
      row["config"] = a.config.empty() ? "built-in defaults" : a.config;
      row["tokens"] = w.tokens;
      out << row.dump() << "\n";
    }
  }
  return p.any_fits() ? 0 : 1;
}

void add_plan_command(CLI::App& app, AppContext& ctx) {
  auto* cmd = app.add_subcommand("plan", "Predict step time and memory per rank for every grid and strategy on a "
                                         "machine, and recommend one (or --calibrate / --validate the model)");
  auto a = std::make_shared<PlanArgs>();
  cmd->add_option("--config,-c", a->config, "YAML configuration (default: built-in defaults)");
  cmd->add_option("--set", a->overrides, "override a key, e.g. --set train.precision=bf16 (repeatable)");
  cmd->add_option("--machine,-m", a->machine, "machine file (machines/*.yaml)");
  cmd->add_option("--ranks,-n", a->ranks, "ranks of the job")->check(CLI::PositiveNumber);
  cmd->add_option("--nodes", a->nodes, "nodes of the job (x the machine's ranks per node)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--precision", a->precision,
                  "precision on the planned machine (default: the configuration's train.precision; a CPU build's "
                  "configurations cannot say bf16, so say it here)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  cmd->add_option("--classes", a->classes, "classes of the dataset")->default_val(a->classes)
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  cmd->add_option("--max-global-batch", a->max_global_batch,
                  "only grids whose global batch N_d x B is at most this (0: any)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top", a->top, "candidates to print")->default_val(a->top)->check(CLI::PositiveNumber);
  cmd->add_flag("--calibrate", a->calibrate,
                "write a machine file (--out) from microbenchmarks: matmul, attention, conv, copy, collectives; "
                "start it with 2+ ranks on one node");
  cmd->add_option("--name", a->name, "--calibrate: the machine's name (default: the host name)");
  cmd->add_option("--validate", a->validate,
                  "compare predictions with measured rows (JSONL of spvit bench step --tokens) and fail beyond "
                  "--max-error");
  cmd->add_option("--max-error", a->max_error, "--validate: largest median absolute relative error allowed")
      ->default_val(a->max_error)
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--out", a->out, "plan: append candidates (JSONL); --calibrate: machine file; --validate: rows "
                                   "with predictions (JSONL)");
  cmd->callback([&ctx, a]() {
    SPVIT_CHECK(!(a->calibrate && !a->validate.empty()), "plan: --calibrate and --validate are separate runs");
    ctx.run = [&ctx, a]() {
      if (a->calibrate) return run_calibration(*a, ctx);
      if (!a->validate.empty()) return run_validation(*a, ctx);
      return run_plan(*a, ctx);
    };
  });
}

const CommandRegistration plan_registration("plan", add_plan_command);

}  // namespace
}  // namespace spvit::app

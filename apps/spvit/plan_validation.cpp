// `spvit plan --validate ROWS.jsonl --machine M`: the step model's predictions for measured `spvit bench step`
// rows (synthetic --tokens runs, as scripts/scaling/sweep.py writes them), the error of each, and the median
// absolute relative error — which must stay within --max-error (docs/scaling.md, "Validation"). The rows carry what
// ran (model shape, tokens, grid, strategy, precision, batch); the machine file carries only microbenchmarks.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "plan_commands.h"
#include "spvit/core/error.h"
#include "spvit/plan/step_model.h"

namespace spvit::app {
namespace {

std::string value_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

struct Measured {
  plan::Workload workload;
  plan::Candidate candidate;
  int ranks = 1;
  double step_ms = 0;
};

Measured from_row(const nlohmann::json& r, const std::string& where) {
  for (const char* key : {"tokens", "ranks", "grid", "attention", "checkpointing", "precision", "model", "batch",
                          "step_ms", "image_side"}) {
    SPVIT_CHECK(r.contains(key), where, ": no '", key, "' (rows of spvit bench step --tokens from this version)");
  }
  std::vector<std::string> overrides;
  for (const auto& [key, value] : r["model"].items()) overrides.push_back("model." + key + "=" + value_text(value));
  overrides.push_back("train.precision=" + r["precision"].get<std::string>());
  overrides.push_back("train.batch_size=" + value_text(r["batch"]));
  overrides.push_back("data.size=" + value_text(r["image_side"]));
  for (const char* key : {"ulysses_size", "hybrid_outer", "grad_average"}) {
    if (r.contains(key)) overrides.push_back(std::string("dist.") + key + "=" + value_text(r[key]));
  }
  Measured m;
  const Config c = parse_config("", overrides);
  m.workload = plan::workload_from_config(c, r.value("classes", int64_t{4}));
  m.workload.tokens = r["tokens"].get<int64_t>();
  const auto grid = r["grid"].get<std::string>();
  const auto x = grid.find('x');
  SPVIT_CHECK(x != std::string::npos, where, ": grid '", grid, "' is not DxS");
  m.candidate.data = std::stoll(grid.substr(0, x));
  m.candidate.seq = std::stoll(grid.substr(x + 1));
  m.candidate.strategy = r["attention"].get<std::string>();
  m.candidate.checkpointing = r["checkpointing"].get<bool>();
  m.candidate.ulysses_size = c.dist.ulysses_size;
  m.candidate.hybrid_outer = c.dist.hybrid_outer;
  m.ranks = r["ranks"].get<int>();
  m.step_ms = r["step_ms"].get<double>();
  return m;
}

}  // namespace

int run_validation(const PlanArgs& a, const AppContext& ctx) {
  SPVIT_CHECK(!a.machine.empty(), "plan --validate: --machine machines/NAME.yaml is required");
  const auto machine = plan::load_machine(a.machine);
  std::ifstream in(a.validate);
  SPVIT_CHECK(in.good(), "plan --validate: cannot read '", a.validate, "'");
  std::vector<nlohmann::json> rows;
  std::vector<double> errors;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = a.validate + ":" + std::to_string(number);
    nlohmann::json r;
    try {
      r = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      SPVIT_THROW(ConfigError, where, " is not JSON");
    }
    if (r.contains("error") || r.contains("loader_only") || r.value("bench", "") == "collectives") continue;
    const auto m = from_row(r, where);
    const auto p = plan::predict(m.workload, machine, m.candidate, m.ranks);
    const double error = (p.step_ms - m.step_ms) / m.step_ms;
    r["predicted_ms"] = p.step_ms;
    r["predicted_compute_ms"] = p.compute_ms();
    r["predicted_comm_ms"] = p.comm_ms;
    // Beside the measured split_ms: which term of the model misses.
    r["predicted_split_ms"] = {{"linear", p.linear_ms}, {"attention", p.attention_ms},
                               {"elementwise", p.elementwise_ms}, {"decoder", p.decoder_ms},
                               {"optimizer", p.optimizer_ms}, {"communication", p.comm_ms}};
    r["error"] = error;
    errors.push_back(std::abs(error));
    rows.push_back(std::move(r));
  }
  SPVIT_CHECK(!rows.empty(), "plan --validate: '", a.validate, "' holds no measured step rows");
  auto sorted = errors;
  std::sort(sorted.begin(), sorted.end());
  const size_t k = sorted.size();
  const double median = k % 2 ? sorted[k / 2] : 0.5 * (sorted[k / 2 - 1] + sorted[k / 2]);
  if (ctx.world_rank == 0) {
    std::printf("| sweep | strategy | ranks | tokens | measured ms | predicted ms | error |\n|---|---|---|---|---|---|---|\n");
    for (const auto& r : rows) {
      std::printf("| %s | %s | %d | %lld | %.1f | %.1f | %+.0f%% |\n", r.value("sweep", "-").c_str(),
                  r["attention"].get<std::string>().c_str(), r["ranks"].get<int>(),
                  static_cast<long long>(r["tokens"].get<int64_t>()), r["step_ms"].get<double>(),
                  r["predicted_ms"].get<double>(), 100.0 * r["error"].get<double>());
    }
    std::printf("\n%zu rows, machine %s: median absolute error %.1f%% (bound %.0f%%), largest %.1f%%\n", k,
                machine.name.c_str(), 100.0 * median, 100.0 * a.max_error, 100.0 * sorted.back());
    if (!a.out.empty()) {
      std::ofstream out(a.out);
      SPVIT_CHECK(out.good(), "plan --validate: cannot write --out '", a.out, "'");
      for (const auto& r : rows) out << r.dump() << "\n";
    }
  }
  if (median > a.max_error) {
    std::fprintf(stderr, "plan --validate: median absolute error %.1f%% exceeds the bound %.0f%%\n", 100.0 * median,
                 100.0 * a.max_error);
    return 1;
  }
  return 0;
}

}  // namespace spvit::app

// `spvit plan` (cmd_plan.cpp) and its two other modes in their own files: --calibrate (plan_calibration.cpp) writes
// a machine file from microbenchmarks; --validate (plan_validation.cpp) compares predictions with measured steps.
#pragma once
#include <string>
#include <vector>

#include "app_context.h"

namespace spvit::app {

struct PlanArgs {
  std::string config;                   // -c: the run to plan (default: built-in defaults)
  std::vector<std::string> overrides;   // --set
  std::string machine;                  // --machine machines/NAME.yaml
  int ranks = 0;                        // --ranks N (or --nodes x ranks_per_node)
  int nodes = 0;                        // --nodes
  std::string precision;                // the matmuls' precision on the planned machine ("": the config's)
  int64_t classes = 4;                  // the dataset's classes (decoder head and loss)
  int64_t max_global_batch = 0;         // only grids with N_d·B <= this (0: any)
  int top = 12;                         // candidates printed
  bool calibrate = false;
  std::string validate;                 // measured rows (JSONL of spvit bench step)
  double max_error = 0.25;              // --validate: the median absolute relative error allowed
  std::string name;                     // --calibrate: the machine's name
  std::string out;                      // plan: JSONL of the candidates; --calibrate: the machine file; --validate: rows
};

int run_calibration(const PlanArgs& a, const AppContext& ctx);
int run_validation(const PlanArgs& a, const AppContext& ctx);

}  // namespace spvit::app

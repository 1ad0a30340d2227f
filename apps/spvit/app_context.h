// What every `spvit` subcommand shares: the MPI runtime, rank-aware logging, the process grid, thread counts.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>

#include "spvit/dist/mpi_runtime.h"
#include "spvit/dist/process_grid.h"

namespace spvit::app {

struct AppContext {
  dist::MpiRuntime* mpi = nullptr;
  int world_rank = 0;
  int world_size = 1;
  std::string log_level = "info";
  // The subcommand that was selected; returns the process exit code.
  std::function<int()> run;
};

// Builds the grid and sets LibTorch's CPU threads so the ranks on one node share its cores instead of
// oversubscribing them. `device` (auto, cpu, cuda) picks this rank's GPU from its node-local rank; `backend` (auto,
// mpi, nccl) the communicator the grid's groups use.
dist::ProcessGrid make_grid(const dist::GridShape& shape, double timeout_s, const std::string& device = "cpu",
                            const std::string& backend = "mpi");

// Subcommands register themselves: each cmd_*.cpp defines
//   static const CommandRegistration reg("name", add_name_command);
// and main() adds every registered command, in name order.
using AddCommand = void (*)(CLI::App& app, AppContext& ctx);
struct CommandRegistration {
  CommandRegistration(const char* name, AddCommand add);
};
void add_registered_commands(CLI::App& app, AppContext& ctx);

}  // namespace spvit::app

// `spvit`: one command-line tool with subcommands (info, selftest; train, eval, infer, patchify, synth, bench
// come with their layers). Launch with mpirun/srun for several ranks.
#include <CLI/CLI.hpp>

#include <iostream>

#include "app_context.h"
#include "spvit/build_info.h"
#include "spvit/core/error.h"
#include "spvit/core/exit_codes.h"
#include "spvit/dist/output_agreement.h"
#include "spvit/core/logging.h"
#include "spvit/train/trainer.h"

int main(int argc, char** argv) {
  spvit::dist::MpiRuntime mpi(&argc, &argv);
  spvit::app::AppContext ctx;
  ctx.mpi = &mpi;
  ctx.world_rank = mpi.world_rank();
  ctx.world_size = mpi.world_size();
  spvit::log::init(ctx.world_rank, ctx.world_size, "info");

  CLI::App app{"spvit " SPVIT_VERSION ": sequence-parallel Vision Transformers for very large images"};
  app.require_subcommand(1);
  app.add_option("--log-level", ctx.log_level, "trace, debug, info, warn, error or off")->default_val("info");
  spvit::app::add_registered_commands(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Every rank parses the same arguments; only rank 0 prints the message.
    const int code = ctx.world_rank == 0 ? app.exit(e) : e.get_exit_code();
    return code == 0 ? spvit::exit_code::kOk : spvit::exit_code::kUsage;  // --help is 0
  }

  // Exit codes: spvit/core/exit_codes.h (the table in docs/cluster.md). The errors below are raised on every rank at
  // the same point, so every rank returns normally (MPI finalised, no abort banner); only an unexpected error on
  // one rank aborts the job.
  namespace exit_code = spvit::exit_code;
  try {
    spvit::log::set_level(ctx.log_level);
    return ctx.run ? ctx.run() : exit_code::kOk;
  } catch (const spvit::train::TrainingPreempted& e) {
    if (ctx.world_rank == 0) spvit::log::warn("{}", e.what());
    return exit_code::kPreempted;
  } catch (const spvit::train::TrainingStopped& e) {
    if (ctx.world_rank == 0) spvit::log::error("{}", e.what());
    return exit_code::kTrainingStopped;
  } catch (const spvit::dist::PeerWriteError&) {
    return exit_code::kWriteFailed;  // the rank that failed to write reports why
  } catch (const spvit::WriteError& e) {
    spvit::log::error("{}", e.what());
    return exit_code::kWriteFailed;
  } catch (const spvit::ConfigError& e) {
    // Configuration is identical on every rank, so every rank stops here: report once, no abort needed.
    if (ctx.world_rank == 0) spvit::log::error("configuration error: {}", e.what());
    return exit_code::kConfigError;
  } catch (const std::exception& e) {
    spvit::log::error("{}", e.what());
    // Peers may be blocked in a collective waiting for this rank: end the whole job rather than let them hang.
    if (ctx.world_size > 1) spvit::dist::abort_world(exit_code::kUnexpected);
    return exit_code::kUnexpected;
  }
}

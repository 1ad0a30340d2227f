// `spvit info`: what this build supports (CUDA, NCCL, OpenCV, OpenSlide, ...) and the MPI library in use.
#include "spvit/dist/mpi.h"

#include <cstdio>

#include "app_context.h"
#include "spvit/core/build_info.h"

namespace spvit::app {

namespace {

void add_info_command(CLI::App& app, AppContext& ctx) {
  auto* cmd = app.add_subcommand("info", "Show the build's features, library versions and MPI world");
  cmd->callback([&ctx]() {
    ctx.run = [&ctx]() {
      if (ctx.world_rank != 0) return 0;
      for (const auto& [name, value] : build_features()) std::printf("%-12s %s\n", (name + ":").c_str(), value.c_str());
      char version[MPI_MAX_LIBRARY_VERSION_STRING];
      int length = 0;
      MPI_Get_library_version(version, &length);
      std::string mpi(version, static_cast<size_t>(length));
      mpi = mpi.substr(0, mpi.find_first_of(",\n"));
      std::printf("%-12s %s, %d rank(s)\n", "MPI:", mpi.c_str(), ctx.world_size);
      return 0;
    };
  });
}

const CommandRegistration info_registration("info", add_info_command);

}  // namespace
}  // namespace spvit::app

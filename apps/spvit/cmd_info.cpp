// `spvit info`: what this build supports (CUDA, NCCL, OpenCV, OpenSlide, ...) and the MPI library in use.
// `spvit info --choices`: every registry's names (attention strategies, decoders, patchers, scorers, dataset
// sources) with the configuration key that selects them, one "key<TAB>name<TAB>summary" line each; the docs check
// (tests/cmake/DocsListRegistries.cmake) compares docs/extending.md with it.
#include "spvit/dist/mpi.h"

#include <cstdio>

#include "app_context.h"
#include "spvit/core/build_info.h"
#include "spvit/data/sources.h"
#include "spvit/model/attention.h"
#include "spvit/model/decoder.h"
#include "spvit/patch/patcher.h"

namespace spvit::app {

namespace {

template <typename Entry>
void print_choices(const Registry<Entry>& registry) {
  for (const auto& e : registry.entries()) {
    std::printf("%s\t%s\t%s\n", registry.config_key().c_str(), e.name.c_str(), e.summary.c_str());
  }
}

void add_info_command(CLI::App& app, AppContext& ctx) {
  auto* cmd = app.add_subcommand("info", "Show the build's features, library versions and MPI world");
  auto choices = std::make_shared<bool>(false);
  cmd->add_flag("--choices", *choices,
                "list the registered attention strategies, decoders, patchers, scorers and dataset sources");
  cmd->callback([&ctx, choices]() {
    ctx.run = [&ctx, choices]() {
      if (ctx.world_rank != 0) return 0;
      if (*choices) {
        print_choices(model::attention_strategies());
        print_choices(model::decoders());
        print_choices(patch::patchers());
        print_choices(patch::scorers());
        print_choices(data::dataset_sources());
        return 0;
      }
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

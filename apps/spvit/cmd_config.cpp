// `spvit config`: loads a YAML configuration (or the defaults), applies `--set key.sub=value` overrides, validates
// it and prints the complete result. The same loading path is used by every command that takes --config.
#include <cstdio>

#include "app_context.h"
#include "spvit/core/config.h"
#include "spvit/train/config_check.h"

namespace spvit::app {
namespace {

void add_config_command(CLI::App& app, AppContext& ctx) {
  auto* cmd = app.add_subcommand("config", "Validate a configuration and print it with every default filled in");
  auto path = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  cmd->add_option("--config,-c", *path, "YAML configuration file (default: built-in defaults)");
  cmd->add_option("--set", *overrides, "override a key, e.g. --set model.dim=384 (repeatable)");
  cmd->callback([&ctx, path, overrides]() {
    ctx.run = [&ctx, path, overrides]() {
      const Config config =
          path->empty() ? train::parse_checked_config("", *overrides) : train::load_checked_config(*path, *overrides);
      if (ctx.world_rank == 0) std::printf("%s", to_yaml(config).c_str());
      return 0;
    };
  });
}

const CommandRegistration config_registration("config", add_config_command);

}  // namespace
}  // namespace spvit::app

// `spvit train --config X.yaml [--set key=value ...] [--resume [PATH] | --resume-if-exists] [--allow-changes K,..]`:
// trains a segmentation model
// sequence-parallel over grid.seq ranks and data-parallel over the rest; writes <train.out_dir>/metrics.jsonl and
// <train.out_dir>/checkpoint.pt.
#include <cstdio>

#include "app_context.h"
#include "spvit/core/config.h"
#include "spvit/core/logging.h"
#include "spvit/train/config_check.h"
#include "spvit/train/trainer.h"

namespace spvit::app {
namespace {

void add_train_command(CLI::App& app, AppContext& ctx) {
  auto* cmd = app.add_subcommand("train", "Train a segmentation model (launch with mpirun/srun for several ranks)");
  struct Args {
    std::string config;
    std::vector<std::string> overrides;
    std::string resume;
    bool resume_if_exists = false;
    std::vector<std::string> allow_changes;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--config,-c", args->config, "YAML configuration (default: built-in defaults)");
  cmd->add_option("--set", args->overrides, "override a key, e.g. --set train.steps=10 (repeatable)");
  auto* resume = cmd->add_option("--resume", args->resume,
                                 "continue from a checkpoint (default: <train.out_dir>/checkpoint.pt); an error if "
                                 "there is none");
  resume->expected(0, 1);
  cmd->add_flag("--resume-if-exists", args->resume_if_exists,
                "continue from <train.out_dir>/checkpoint.pt if it exists, else start fresh (for job scripts that "
                "are requeued)")
      ->excludes(resume);
  cmd->add_option("--allow-changes", args->allow_changes,
                  "with a resume: configuration keys or sections that may differ from the checkpoint's, e.g. "
                  "grid.data,grid.seq (bit-exact continuation is then lost)")
      ->delimiter(',');
  cmd->callback([&ctx, args, resume]() {
    ctx.run = [&ctx, args, resume]() {
      const Config config = args->config.empty() ? train::parse_checked_config("", args->overrides)
                                                 : train::load_checked_config(args->config, args->overrides);
      log::set_level(ctx.log_level == "info" ? config.log_level : ctx.log_level);
      auto grid = make_grid({static_cast<int>(config.grid.data), static_cast<int>(config.grid.seq)},
                            config.dist.timeout_s, config.device, config.dist.backend);
      train::TrainOptions options;
      options.resume = resume->count() > 0;
      options.resume_path = args->resume;
      options.resume_if_exists = args->resume_if_exists;
      options.allow_changes = args->allow_changes;
      const auto summary = train::run_training(config, grid, options);
      if (ctx.world_rank == 0) {
        std::printf("trained %lld steps: final loss %.5f", static_cast<long long>(summary.steps), summary.last_loss);
        if (summary.val_dice >= 0) std::printf(", validation mean Dice %.4f", summary.val_dice);
        std::printf("\ncheckpoint: %s\nmetrics: %s\n", summary.checkpoint.c_str(), summary.metrics.c_str());
      }
      return 0;
    };
  });
}

const CommandRegistration train_registration("train", add_train_command);

}  // namespace
}  // namespace spvit::app

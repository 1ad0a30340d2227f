// `spvit eval --checkpoint C [--data PATH] [--out DIR]`: evaluates a trained model on its configuration's
// validation data (or on PATH: an image folder or .h5 file) and writes metrics.json and prediction overlays. For a
// slide dataset (its val regions) metrics.json also has each slide's metrics under "per_group". A model trained on NIfTI
// volumes is evaluated on whole cases instead (eval_volumes.cpp): --data is then a dataset folder.
#include <cstdio>
#include <map>

#include "app_context.h"
#include "spvit/build_info.h"
#if SPVIT_HAVE_INFER
#include "infer_volumes.h"
#endif
#include "spvit/core/atomic_file.h"
#include "spvit/core/config.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/data/formats.h"
#include "spvit/dist/output_agreement.h"
#include "spvit/train/checkpoint.h"
#include "spvit/train/data_setup.h"
#include "spvit/train/evaluation.h"
#include "spvit/train/model_loading.h"

namespace spvit::app {
namespace {

void add_eval_command(CLI::App& app, AppContext& ctx) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a checkpoint: metrics JSON and prediction overlays");
  struct Args {
    std::string checkpoint, data, out = "eval";
    std::vector<std::string> overrides;
    int64_t overlays = 2;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--checkpoint", args->checkpoint, "checkpoint written by spvit train")->required();
  cmd->add_option("--data", args->data, "image folder or .h5 file (default: the configuration's validation data)");
  cmd->add_option("--out", args->out, "output folder")->default_val(args->out);
  cmd->add_option("--overlays", args->overlays, "samples to draw as PNG overlays")->default_val(args->overlays);
  cmd->add_option("--set", args->overrides, "override a configuration key (e.g. grid.seq=2)");
  cmd->callback([&ctx, args]() {
    ctx.run = [&ctx, args]() {
      const Config config = train::config_for_evaluation(args->checkpoint, args->overrides);
#if SPVIT_HAVE_INFER
      if (config.data.source == "nifti") {  // whole cases, sliding window, as spvit infer segments them
        VolumeRunOptions v;
        v.checkpoint = args->checkpoint;
        v.overrides = args->overrides;
        v.seq = static_cast<int>(config.grid.seq);
        return run_volume_evaluation(ctx, v, config, args->data, args->out);
      }
#endif
      auto grid = make_grid({static_cast<int>(config.grid.data), static_cast<int>(config.grid.seq)},
                            config.dist.timeout_s, config.device, config.dist.backend);
      auto loaded = train::load_segmenter(args->checkpoint, config, grid.local_rank());
      std::shared_ptr<data::Dataset> dataset;
      if (!args->data.empty()) {
        dataset = args->data.size() > 3 && args->data.substr(args->data.size() - 3) == ".h5"
                      ? data::open_hdf5(args->data)
                      : data::open_image_folder(args->data);
      } else {
        dataset = train::open_datasets(config).val;
        if (!dataset) SPVIT_THROW(ConfigError, "the checkpoint's configuration has no validation data: pass --data");
      }
      if (dataset->num_classes() != loaded.classes) {
        SPVIT_THROW(ConfigError, "the data (", dataset->describe(), ") has ", dataset->num_classes(),
                    " classes but the checkpoint's model predicts ", loaded.classes);
      }
      auto& model = loaded.model;
      train::EvalOptions eo;
      eo.overlay_dir = args->out;
      eo.overlays = args->overlays;
      std::map<std::string, train::SegmentationCounts> per_slide;  // slide datasets: the metrics of each slide
      eo.per_group = &per_slide;
      const auto counts = train::evaluate(model, *dataset, config, grid, eo);
      const std::string json = train::metrics_json(counts, dataset->size(), per_slide);
      dist::write_on_one_rank(grid.world(), ctx.world_rank == 0,
                              [&] { write_text_atomically(args->out + "/metrics.json", json); });
      if (ctx.world_rank == 0) {
        std::printf("%s", json.c_str());
        for (const auto& [slide, c] : per_slide) {
          std::printf("%s: mean foreground Dice %.4f, IoU per class", slide.c_str(), c.mean_dice());
          for (double v : c.iou()) std::printf(" %.4f", v);
          std::printf("\n");
        }
        std::printf("mean foreground Dice %.4f; metrics: %s/metrics.json; overlays: %s/*_overlay.png\n",
                    counts.mean_dice(), args->out.c_str(), args->out.c_str());
      }
      return 0;
    };
  });
}

const CommandRegistration eval_registration("eval", add_eval_command);

}  // namespace
}  // namespace spvit::app

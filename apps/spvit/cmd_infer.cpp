// `spvit infer --checkpoint C --input SLIDE_OR_IMAGE --out DIR [...]`: whole-slide inference with a trained model
// (docs/inference.md). With mpirun -np N the tissue tiles are split over N / seq data groups, each tile's tokens over
// the seq ranks of a group; world rank 0 writes the outputs. A NIfTI input (a case's file, or a folder of cases)
// takes the 3D path instead (infer_volumes.cpp).
#include <algorithm>
#include <cstdio>
#include <optional>

#include "app_context.h"
#include "infer_volumes.h"
#include "spvit/infer/volume.h"
#include "spvit/dist/output_agreement.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/dist/mpi_runtime.h"
#include "spvit/infer/model_predictor.h"
#include "spvit/infer/pipeline.h"
#include "spvit/core/progress.h"

namespace spvit::app {
namespace {

void add_infer_command(CLI::App& app, AppContext& ctx) {
  auto* cmd = app.add_subcommand("infer", "Whole-slide inference: label mask (pyramidal TIFF), GeoJSON, overlay, summary");
  struct Args {
    std::string checkpoint, input, labels, out = "infer", tissue = "auto", formats = "tiff,geojson,png,json",
                                    blend = "gaussian", progress = "auto";
    std::optional<int> level;
    std::optional<double> mpp;
    int64_t tile = 0, overlap = -1, batch = 4;
    int seq = 1;
    std::vector<std::string> overrides;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--checkpoint", args->checkpoint, "checkpoint written by spvit train")->required();
  cmd->add_option("--input", args->input, "slide (any OpenSlide format), PNG/JPEG/TIFF image, or NIfTI volume: a "
                  "case's .nii/.nii.gz file (CASE_0000.nii.gz: its channel files) or a folder of cases")->required();
  cmd->add_option("--out", args->out, "output folder")->default_val(args->out);
  auto* lvl = cmd->add_option("--level", args->level,
                              "slide level to run on (default: the training resolution of a slide-trained model, "
                              "else 0)");
  cmd->add_option("--mpp", args->mpp, "run at this many micrometres per pixel (a level, or resampled from the next "
                  "finer one)")->excludes(lvl);
  cmd->add_option("--tile", args->tile, "tile (volumes: window) side in pixels (default: the trained image size)");
  cmd->add_option("--overlap", args->overlap, "overlap between neighbouring tiles in pixels (default: tile / 4; "
                  "volumes: window / 2)");
  cmd->add_option("--batch", args->batch, "tiles per model call")->default_val(args->batch);
  cmd->add_option("--tissue", args->tissue, "auto (Otsu on saturation), none, or a mask PNG")->default_val(args->tissue);
  cmd->add_option("--formats", args->formats, "comma-separated subset of tiff,geojson,png,json")->default_val(args->formats);
  cmd->add_option("--blend", args->blend, "gaussian or linear (volumes: gaussian or constant)")
      ->check(CLI::IsMember({"gaussian", "linear", "constant"}))
      ->default_val(args->blend);
  cmd->add_option("--seq", args->seq, "ranks per sequence group: each tile's tokens split over them (unetr models)")
      ->default_val(args->seq);
  cmd->add_option("--progress", args->progress, "progress bar on rank 0: auto (when on a terminal), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->default_val(args->progress);
  cmd->add_option("--labels", args->labels, "volumes: folder of reference label maps <case>.nii.gz (nnU-Net's "
                  "labelsTs/): Dice per label and region, per case and mean, in the output and summary.json");
  cmd->add_option("--set", args->overrides, "override a key of the checkpoint's configuration (e.g. device=cpu)");
  cmd->callback([&ctx, args]() {
    ctx.run = [&ctx, args]() {
      if (infer::is_volume_input(args->input)) {
        if (args->level || args->mpp) SPVIT_THROW(ConfigError, "--level and --mpp are for slides, not NIfTI volumes");
        VolumeRunOptions v;
        v.checkpoint = args->checkpoint;
        v.overrides = args->overrides;
        v.seq = args->seq;
        v.window = args->tile;
        v.overlap = args->overlap;
        v.batch = args->batch;
        v.blend = args->blend;
        v.progress = args->progress;
        return run_volume_inference(ctx, v, args->input, args->out, args->labels);
      }
      if (args->blend == "constant") SPVIT_THROW(ConfigError, "--blend constant is for volumes; slides blend gaussian "
                                                 "or linear");
      infer::InferOptions o;
      o.formats = infer::parse_formats(args->formats);
      o.out_dir = args->out;
      o.tissue.mode = args->tissue;
      o.tiler.blend = args->blend;
      o.tiler.batch = args->batch;
      if (args->batch < 1) SPVIT_THROW(ConfigError, "--batch must be >= 1, got ", args->batch);
      // The slide first: a missing or corrupt input is reported before the model is built.
      auto slide = infer::Slide::open(args->input);
      if (args->level) slide->level(*args->level);  // an unknown level is an error now, naming the slide
      o.level = args->level.value_or(-1);
      o.mpp = args->mpp.value_or(0.0);
      auto lm = infer::load_model(args->checkpoint, args->overrides, dist::node_local_rank());
      if (!args->level && !args->mpp) infer::use_training_resolution(lm, *slide, o);
      o.tiler.tile = args->tile > 0 ? args->tile : infer::default_tile(lm);
      o.tiler.overlap = args->overlap >= 0 ? args->overlap : o.tiler.tile / 4;
      if (o.tiler.overlap >= o.tiler.tile) {
        SPVIT_THROW(ConfigError, "--overlap ", o.tiler.overlap, " must be smaller than the tile ", o.tiler.tile);
      }
      o.class_names = lm.class_names;
      o.class_colours = lm.class_colours;
      if (args->seq < 1 || ctx.world_size % args->seq != 0) {
        SPVIT_THROW(ConfigError, "--seq ", args->seq, " must divide the number of ranks ", ctx.world_size);
      }
      std::optional<dist::ProcessGrid> grid;
      if (ctx.world_size > 1) {
        // N / seq data groups share the tiles; each group's seq ranks split every tile's tokens. MPI communicators.
        grid.emplace(make_grid({ctx.world_size / args->seq, args->seq}, lm.config.dist.timeout_s, lm.config.device, "mpi"));
        o.tiler.rank = grid->data_index();
        o.tiler.world = grid->data_size();
        o.tiler.follower = grid->seq_index() != 0;
        // Stripe sums among the groups' first ranks (the data communicator of sequence index 0).
        o.tiler.reduce = [&grid](torch::Tensor& acc) { grid->data()->all_reduce(acc, dist::ReduceOp::Sum)->wait(); };
      }
      auto predict = args->seq > 1 ? infer::make_predictor(lm, o.tiler.tile, grid->seq(), args->seq, grid->seq_index())
                                   : infer::make_predictor(lm, o.tiler.tile);
      // Rank 0 on a terminal: a bar redrawn per batch; otherwise a log line every 10% of the tissue tiles. The bar
      // is made when tiling starts (the tiler reports 0 tiles done then), so the rate and ETA time the tiles only.
      std::optional<ProgressBar> bar;
      int64_t last_decile = 0;
      o.tiler.progress = [&](int64_t done, int64_t total) {
        if (ctx.world_rank != 0 || total == 0) return;
        if (!bar) bar.emplace("tiles", total, done, progress_wanted(args->progress));
        if (done == 0) return;
        const double rate = static_cast<double>(done) / std::max(bar->elapsed_s(), 1e-9);
        if (bar->enabled()) {
          bar->update(done, (rate >= 1e3 ? human_rate(rate) : fmt::format("{:.1f}", rate)) + " tiles/s");
          if (done == total) bar->finish();
          return;
        }
        const int64_t decile = done * 10 / total;
        if (decile == last_decile) return;
        last_decile = decile;
        const double eta = bar->eta_s(done);
        log::info("tiles {}/{} ({}%), {} elapsed, {:.1f} tiles/s, ETA {}", done, total, done * 100 / total,
                  format_duration(bar->elapsed_s()), rate, eta >= 0 ? format_duration(eta) : "?");
      };
      const auto result = infer::run_inference(*slide, predict, o);
      dist::agree_on_write_errors(grid ? grid->world() : dist::CommPtr{}, result.write_error);
      if (ctx.world_rank == 0) {
        const auto& s = result.stats;
        std::printf("%s", result.summary_json.c_str());
        const std::string where = result.level >= 0 ? "level " + std::to_string(result.level)
                                                    : "downsample " + std::to_string(result.downsample);
        std::printf("%s %lldx%lld: %lld tiles run, %lld skipped, %.2f s, %.3f Mpix/s of tissue; outputs in %s\n",
                    where.c_str(), static_cast<long long>(s.width), static_cast<long long>(s.height),
                    static_cast<long long>(s.tiles_run), static_cast<long long>(s.tiles_skipped), s.seconds,
                    s.seconds > 0 ? static_cast<double>(s.covered_pixels) / 1e6 / s.seconds : 0.0, o.out_dir.c_str());
      }
      return 0;
    };
  });
}

const CommandRegistration infer_registration("infer", add_infer_command);

}  // namespace
}  // namespace spvit::app

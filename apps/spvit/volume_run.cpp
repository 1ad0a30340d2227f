// VolumeRun (volume_run.h).
#include "volume_run.h"

#include <cstdio>

#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/core/progress.h"
#include "spvit/dist/mpi_runtime.h"

namespace spvit::app {

VolumeRun::VolumeRun(AppContext& ctx, const VolumeRunOptions& options) : ctx_(ctx), options_(options) {
  lm_ = infer::load_model(options.checkpoint, options.overrides, dist::node_local_rank(), /*spatial_dims=*/3);
  data_ = infer::VolumeModelData::from_checkpoint(lm_.data_statistics, lm_.config, lm_.classes);
  if (options.window > 0) data_.window = options.window;
  if (options.seq < 1 || ctx.world_size % options.seq != 0) {
    SPVIT_THROW(ConfigError, "--seq ", options.seq, " must divide the number of ranks ", ctx.world_size);
  }
  if (ctx.world_size > 1) {
    grid_.emplace(make_grid({ctx.world_size / options.seq, options.seq}, lm_.config.dist.timeout_s, lm_.config.device,
                            "mpi"));
  }
  predict_ = options.seq > 1 ? infer::make_predictor(lm_, data_.window, grid_->seq(), options.seq, grid_->seq_index())
                             : infer::make_predictor(lm_, data_.window);
  const int64_t overlap = options.overlap >= 0 ? options.overlap : data_.window / 2;
  if (overlap >= data_.window) {
    SPVIT_THROW(ConfigError, "--overlap ", overlap, " must be smaller than the window ", data_.window);
  }
  if (options.batch < 1) SPVIT_THROW(ConfigError, "--batch must be >= 1, got ", options.batch);
  if (options.blend != "gaussian" && options.blend != "constant") {
    SPVIT_THROW(ConfigError, "--blend ", options.blend, ": volumes blend gaussian or constant");
  }
}

void VolumeRun::for_each_case(
    const std::vector<data::NiftiCase>& cases,
    const std::function<void(size_t index, const infer::VolumeSegmentation& s, bool writer)>& done) {
  const int groups = grid_ ? grid_->data_size() : 1, group = grid_ ? grid_->data_index() : 0;
  const bool writer = !grid_ || grid_->seq_index() == 0;
  infer::VolumeWindowOptions o;
  o.overlap = static_cast<double>(options_.overlap >= 0 ? options_.overlap : data_.window / 2) /
              static_cast<double>(data_.window);
  o.batch = options_.batch;
  o.blend = options_.blend;
  for (size_t i = 0; i < cases.size(); ++i) {
    if (static_cast<int>(i % static_cast<size_t>(groups)) != group) continue;
    std::optional<ProgressBar> bar;
    o.progress = [&](int64_t windows, int64_t total) {
      if (ctx_.world_rank != 0) return;
      if (!bar) bar.emplace(cases[i].name, total, windows, progress_wanted(options_.progress));
      if (bar->enabled()) {
        bar->update(windows, "windows");
        if (windows == total) bar->finish();
      }
    };
    const auto s = infer::segment_volume(cases[i], data_, lm_.classes, predict_, o);
    if (writer) {
      log::info("case {}: {}x{}x{} voxels, {} windows on a {}x{}x{} grid, {:.2f} s", cases[i].name, s.header.shape[0],
                s.header.shape[1], s.header.shape[2], s.windows.windows, s.model_shape[2], s.model_shape[1],
                s.model_shape[0], s.seconds);
    }
    done(i, s, writer);
  }
}

void VolumeRun::sum_over_ranks(torch::Tensor& t) {
  if (grid_) grid_->world()->all_reduce(t, dist::ReduceOp::Sum)->wait();
}

std::vector<infer::CaseOverlap> VolumeRun::gather_overlaps(const std::vector<data::NiftiCase>& cases,
                                                           const std::map<size_t, infer::CaseOverlap>& mine) {
  const int64_t structures = lm_.classes - 1 + static_cast<int64_t>(data_.regions.size());
  auto t = torch::zeros({static_cast<int64_t>(cases.size()), 2, structures}, torch::kFloat64);
  for (const auto& [i, o] : mine) {
    t[static_cast<int64_t>(i)][0].copy_(torch::tensor(o.intersection, torch::kFloat64));
    t[static_cast<int64_t>(i)][1].copy_(torch::tensor(o.total, torch::kFloat64));
  }
  sum_over_ranks(t);
  std::vector<infer::CaseOverlap> out;
  for (size_t i = 0; i < cases.size(); ++i) {
    infer::CaseOverlap o;
    o.name = cases[i].name;
    const auto row = t[static_cast<int64_t>(i)].contiguous();
    const double* p = row.data_ptr<double>();
    o.intersection.assign(p, p + structures);
    o.total.assign(p + structures, p + 2 * structures);
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace spvit::app

// What `spvit infer` and `spvit eval` share for NIfTI volumes: the model with its data statistics, the predictor
// (sequence-parallel with --seq), and the cases split over the data groups.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "app_context.h"
#include "spvit/data/nifti_dataset.h"
#include "spvit/infer/model_predictor.h"
#include "spvit/infer/volume.h"
#include "spvit/infer/volume_evaluation.h"

namespace spvit::app {

struct VolumeRunOptions {
  std::string checkpoint;
  std::vector<std::string> overrides;
  int seq = 1;             // ranks per sequence group (each window's tokens split over them)
  int64_t window = 0;      // window side (0: the trained crop side data.size)
  int64_t overlap = -1;    // voxels shared by neighbouring windows (-1: half a window, nnU-Net's)
  int64_t batch = 2;
  std::string blend = "gaussian";
  std::string progress = "auto";
};

class VolumeRun {
 public:
  VolumeRun(AppContext& ctx, const VolumeRunOptions& options);
  const infer::VolumeModelData& model() const { return data_; }
  int64_t classes() const { return lm_.classes; }
  // Runs `done` for every case this rank's data group segments (case i goes to group i % groups), on every rank of
  // the group (the windows run sequence-parallel), with `writer` true on the group's first rank only.
  void for_each_case(const std::vector<data::NiftiCase>& cases,
                     const std::function<void(size_t index, const infer::VolumeSegmentation& s, bool writer)>& done);
  // Sums `t` over all ranks (in place); a no-op on one process.
  void sum_over_ranks(torch::Tensor& t);
  // Each case's overlap counts (filled by the rank that scored it, absent elsewhere) on every rank, in case order.
  std::vector<infer::CaseOverlap> gather_overlaps(const std::vector<data::NiftiCase>& cases,
                                                  const std::map<size_t, infer::CaseOverlap>& mine);
  bool world_writer() const { return ctx_.world_rank == 0; }
  dist::CommPtr world() const { return grid_ ? grid_->world() : dist::CommPtr{}; }

 private:
  AppContext& ctx_;
  VolumeRunOptions options_;
  infer::LoadedModel lm_;
  infer::VolumeModelData data_;
  std::optional<dist::ProcessGrid> grid_;
  infer::VolumePredictor predict_;
};

}  // namespace spvit::app

// The training loop as a whole: a sequence-parallel run equals the single-process run (parameters after 3
// optimiser steps, float64), and an interrupted run resumed from its checkpoint equals an uninterrupted one bit for
// bit. Runs under 2 ranks (grid 1x2); the single-process reference runs on rank 0 over MPI_COMM_SELF.
#include <gtest/gtest.h>

#include <filesystem>

#include "dist/mpi_test_grid.h"
#include "spvit/build_info.h"
#if SPVIT_HAVE_INFER
#include "spvit/infer/synthetic_slides.h"
#endif
#include "spvit/data/synthetic_nifti.h"
#include "spvit/model/segmenter.h"
#include "spvit/train/checkpoint.h"
#include "spvit/train/config_check.h"
#include "spvit/train/trainer.h"

namespace spvit::train {
namespace {

Config tiny_config(const std::string& out_dir, int64_t seq, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> o{"seed=3", "dtype=float64", "grid.seq=" + std::to_string(seq), "model.patch=4",
                             "model.dim=16", "model.depth=2", "model.heads=2", "model.mlp_ratio=2",
                             "model.max_tokens=64", "model.decoder_width=4", "data.size=32", "data.train_samples=6",
                             "data.val_samples=2", "data.workers=1", "train.steps=4", "train.batch_size=2",
                             "train.warmup_steps=1", "train.eval_every=0", "train.checkpoint_every=0",
                             "train.out_dir=" + out_dir};
  o.insert(o.end(), extra.begin(), extra.end());
  return parse_config("", o);
}

// Parameters stored in a checkpoint, by name.
std::map<std::string, torch::Tensor> parameters_of(const std::string& checkpoint) {
  const Config c = parse_config(read_checkpoint_config(checkpoint));
  auto options = model::SegmenterOptions::from_config(c.model, 4);
  options.decoder_width = c.model.decoder_width;
  model::Segmenter m(options);
  m->to(torch::kFloat64);
  load_checkpoint(checkpoint, *m, nullptr);
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m->named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

// A temporary directory name every rank agrees on: `prefix` and rank 0's pid (broadcast).
std::string shared_temp_dir(const dist::ProcessGrid& grid, const std::string& prefix) {
  auto pid = torch::full({1}, static_cast<int64_t>(::getpid()), torch::kLong);
  grid.world()->broadcast(pid, 0)->wait();
  return std::filesystem::temp_directory_path().string() + "/" + prefix + std::to_string(pid.item<int64_t>());
}

// `extra`: configuration overrides of both runs (e.g. another positional encoding).
void check_sequence_parallel_equals_single_process(const std::vector<std::string>& extra) {
  const auto& grid = testing::test_grid();
  ASSERT_EQ(grid.data_size(), 1) << "run this test with a 1xN grid";
  const std::string base = shared_temp_dir(grid, "spvit_eq_");
  auto config = tiny_config(base + "/sp", grid.seq_size(), extra);
  config.train.steps = 3;
  run_training(config, grid, {});
  if (grid.world_rank() == 0) {
    auto self = dist::ProcessGrid::create_self(60);
    auto single = tiny_config(base + "/single", 1, extra);
    single.train.steps = 3;
    run_training(single, self, {});
    auto a = parameters_of(base + "/sp/checkpoint.pt"), b = parameters_of(base + "/single/checkpoint.pt");
    ASSERT_EQ(a.size(), b.size());
    double worst = 0;
    for (auto& [name, value] : a) {
      const double scale = b[name].abs().max().item<double>();
      worst = std::max(worst, (value - b[name]).abs().max().item<double>() / std::max(scale, 1e-300));
    }
    EXPECT_LT(worst, 1e-10);
    // The run must have changed the parameters (the comparison is not between two untrained models).
    auto initial = tiny_config(base + "/unused", 1, extra);
    torch::manual_seed(initial.seed);
    model::Segmenter fresh(model::SegmenterOptions::from_config(initial.model, 4));
    EXPECT_GT((fresh->named_parameters()["encoder.embed.weight"].to(torch::kFloat64) -
               a["encoder.embed.weight"]).abs().max().item<double>(), 1e-6);
    std::filesystem::remove_all(base);
  }
  grid.world()->barrier()->wait();
}

TEST(Trainer, SequenceParallelRunEqualsSingleProcessRun) { check_sequence_parallel_equals_single_process({}); }

// The coordinate positional encoding with the unetr decoder: each rank's band encodes the global coordinates.
TEST(Trainer, CoordsSequenceParallelRunEqualsSingleProcessRun) {
  check_sequence_parallel_equals_single_process({"model.pos_encoding=coords"});
}

#if SPVIT_HAVE_INFER
// Slide regions (data.source: slides) at a fractional downsample (1.5: each rank's band is area-averaged on its
// own), with unannotated glass ignored: each rank reading only its band equals one process reading whole samples.
TEST(Trainer, SlidesSequenceParallelRunEqualsSingleProcessRun) {
  const auto& grid = testing::test_grid();
  const std::string dir = shared_temp_dir(grid, "spvit_slides_eq_");
  if (grid.world_rank() == 0) {
    for (uint64_t i = 0; i < 2; ++i) {
      infer::SyntheticSlideOptions o;
      o.width = 200 + 40 * static_cast<int64_t>(i), o.height = 160, o.mpp = 0.5, o.seed = i;
      infer::write_synthetic_slide(dir, "slide_" + std::to_string(i), o);
    }
  }
  grid.world()->barrier()->wait();
  check_sequence_parallel_equals_single_process({"data.source=slides", "data.path=" + dir, "data.mpp=0.75",
                                                 "data.classes={tissue: 1, gland: 2, nuclei: 3}",
                                                 "data.unannotated=ignore", "data.val_samples=0", "data.tissue=none"});
  if (grid.world_rank() == 0) std::filesystem::remove_all(dir);
}
#endif

// NIfTI volumes (data.source: nifti, MSD layout with 2 channels in one 4-D .nii.gz): each rank reading only its
// slab of k (decompressing up to it) equals one process reading whole crops.
TEST(Trainer, NiftiSequenceParallelRunEqualsSingleProcessRun) {
  const auto& grid = testing::test_grid();
  const std::string dir = shared_temp_dir(grid, "spvit_nifti_eq_");
  if (grid.world_rank() == 0) {
    data::SyntheticNiftiOptions o;
    o.layout = "msd";
    o.shape = {20, 24, 22};  // smaller and larger than the 16³ crops
    o.count = 6;
    o.channels = 2;
    data::write_synthetic_nifti(dir, o);
  }
  grid.world()->barrier()->wait();
  check_sequence_parallel_equals_single_process({"data.source=nifti", "data.path=" + dir, "data.size=16",
                                                 "model.spatial_dims=3", "model.channels=2", "data.val_samples=0"});
  if (grid.world_rank() == 0) std::filesystem::remove_all(dir);
}

TEST(Trainer, ResumeContinuesBitExactly) {
  const auto& grid = testing::test_grid();
  const std::string base = shared_temp_dir(grid, "spvit_resume_");
  // Batches of 2 from 6 samples: 3 batches per epoch, so 4 steps cross an epoch boundary after the resume point.
  run_training(tiny_config(base + "/straight", grid.seq_size()), grid, {});
  TrainOptions first_half;
  first_half.stop_after = 2;
  run_training(tiny_config(base + "/resumed", grid.seq_size()), grid, first_half);
  TrainOptions second_half;
  second_half.resume = true;
  const auto summary = run_training(tiny_config(base + "/resumed", grid.seq_size()), grid, second_half);
  EXPECT_EQ(summary.steps, 4);
  if (grid.world_rank() == 0) {
    auto a = parameters_of(base + "/straight/checkpoint.pt"), b = parameters_of(base + "/resumed/checkpoint.pt");
    for (auto& [name, value] : a) EXPECT_TRUE(torch::equal(value, b[name])) << name << " differs after resume";
    std::filesystem::remove_all(base);
  }
  grid.world()->barrier()->wait();
}

TEST(Trainer, BadDataConfigurationIsNamed) {
  const auto& grid = testing::test_grid();
  auto c = tiny_config("/tmp/unused", grid.seq_size());
  c.model.channels = 1;  // synthetic pathology is RGB
  try {
    run_training(c, grid, {});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'model.channels' = 1 but the data has 3 channel(s)"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(train::parse_checked_config("", {"data.source=hdf5"}), ConfigError);  // no data.path
}

}  // namespace
}  // namespace spvit::train

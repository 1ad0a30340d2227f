// 3D sliding-window inference (infer/volume_window.h, infer/volume.h) with analytic networks: a voxel-wise network
// gives the untiled result everywhere, window borders included; a network that depends on the position inside its
// window gives exactly the brute-force blend of every window over the whole volume (the row-by-row accumulator drops
// nothing); a case resampled to a training spacing and back equals the same operations done on whole volumes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "spvit/data/nifti_file.h"
#include "spvit/data/volume_resample.h"
#include "spvit/infer/volume.h"
#include "spvit/infer/volume_window.h"

namespace fs = std::filesystem;
using namespace spvit;
using namespace spvit::infer;

namespace {

// Voxel-wise: class logits (x, -x, 0.5) of channel 0 -> softmax.
torch::Tensor voxelwise_probs(const torch::Tensor& x) {
  return torch::softmax(torch::stack({x, -x, torch::full_like(x, 0.5)}, 1), 1);
}
VolumePredictor voxelwise() {
  return [](const torch::Tensor& w) { return voxelwise_probs(w.select(1, 0)); };
}

// Runs the windows over `volume` [C, D, H, W] and collects the sink's slices, checking their order.
torch::Tensor run(const torch::Tensor& volume, const VolumePredictor& predict, const VolumeWindowOptions& o,
                  int64_t classes, VolumeWindowStats* stats = nullptr) {
  const int64_t D = volume.size(1);
  std::vector<torch::Tensor> slices;
  int64_t next = 0;
  const auto s = run_volume_windows(
      {D, volume.size(2), volume.size(3)}, volume.size(0), classes,
      [&](int64_t z0, int64_t z1) { return volume.narrow(1, z0, z1 - z0); }, predict, o,
      [&](int64_t z0, const torch::Tensor& p) {
        EXPECT_EQ(z0, next) << "slices in order, each once";
        next = z0 + p.size(1);
        slices.push_back(p);
      });
  EXPECT_EQ(next, D);
  if (stats) *stats = s;
  return torch::cat(slices, 1);
}

}  // namespace

TEST(VolumeWindow, StartsSpreadEvenlyAndReachTheEdge) {
  EXPECT_EQ(window_starts(20, 32, 0.5), (std::vector<int64_t>{0}));
  EXPECT_EQ(window_starts(32, 32, 0.5), (std::vector<int64_t>{0}));
  for (int64_t n : {33, 47, 64, 100, 129}) {
    const auto s = window_starts(n, 32, 0.5);
    EXPECT_EQ(s.front(), 0);
    EXPECT_EQ(s.back(), n - 32) << n;
    for (size_t i = 1; i < s.size(); ++i) EXPECT_LE(s[i] - s[i - 1], 16) << "step <= S (1 - overlap)";
  }
  const auto w = window_weights(16, "gaussian");
  EXPECT_GT(w.min().item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(w.max().item<float>(), 1.0f);
}

TEST(VolumeWindow, VoxelwiseNetworkEqualsTheUntiledResultAtWindowBorders) {
  torch::manual_seed(1);
  // 37 slices (3 rows of windows), 21 rows (shorter than the window: padded), 30 columns (2 windows).
  const auto volume = torch::randn({2, 37, 21, 30});
  VolumeWindowOptions o;
  o.window = 16;
  o.overlap = 0.5;
  o.batch = 3;
  VolumeWindowStats stats;
  const auto tiled = run(volume, voxelwise(), o, 3, &stats);
  const auto untiled = voxelwise_probs(volume[0].unsqueeze(0))[0];
  EXPECT_LT((tiled - untiled).abs().max().item<float>(), 1e-6f);
  EXPECT_EQ(stats.windows, static_cast<int64_t>(window_starts(37, 16, 0.5).size() * window_starts(21, 16, 0.5).size() *
                                               window_starts(30, 16, 0.5).size()));
  // Memory: one row of windows (S slices of the padded plane) whatever the depth.
  EXPECT_EQ(stats.peak_accumulator_bytes, (3 + 1) * 16 * 21 * 30 * 4);
}

TEST(VolumeWindow, PositionDependentNetworkEqualsTheBruteForceBlend) {
  torch::manual_seed(2);
  const int64_t S = 12;
  const auto volume = torch::randn({1, 41, 19, 26});
  // Logits shifted by the position inside the window: tiling matters, so the blend is what is checked.
  const auto ramp = torch::linspace(-1, 1, S);
  const auto bias = ramp.view({S, 1, 1}) + 2 * ramp.view({1, S, 1}) - ramp.view({1, 1, S});
  const VolumePredictor predict = [&](const torch::Tensor& w) {
    const auto x = w.select(1, 0);
    return torch::softmax(torch::stack({x + bias, -x - bias, torch::zeros_like(x)}, 1), 1);
  };
  for (const std::string blend : {"gaussian", "constant"}) {
    VolumeWindowOptions o;
    o.window = S;
    o.overlap = 0.4;
    o.blend = blend;
    const auto tiled = run(volume, predict, o, 3);
    // Brute force: every window over one accumulator of the whole (padded) volume, in float64.
    const int64_t D = 41, H = 19, W = 26, PH = std::max(H, S), PW = std::max(W, S);
    auto padded = torch::zeros({1, D, PH, PW});
    padded.narrow(2, 0, H).narrow(3, 0, W).copy_(volume);
    auto acc = torch::zeros({3, D + S, PH, PW}, torch::kFloat64), wsum = torch::zeros({D + S, PH, PW}, torch::kFloat64);
    const auto weights = window_weights(S, blend).to(torch::kFloat64);
    using torch::indexing::Slice;
    for (int64_t z : window_starts(D, S, 0.4)) {
      for (int64_t y : window_starts(H, S, 0.4)) {
        for (int64_t x : window_starts(W, S, 0.4)) {
          auto win = torch::zeros({1, 1, S, S, S});
          const int64_t real = std::min(D, z + S) - z;
          win.index({0, Slice(), Slice(0, real)}).copy_(padded.index({Slice(), Slice(z, z + real), Slice(y, y + S), Slice(x, x + S)}));
          const auto p = predict(win)[0].to(torch::kFloat64);
          acc.index({Slice(), Slice(z, z + S), Slice(y, y + S), Slice(x, x + S)}) += p * weights;
          wsum.index({Slice(z, z + S), Slice(y, y + S), Slice(x, x + S)}) += weights;
        }
      }
    }
    const auto reference = (acc / wsum).index({Slice(), Slice(0, D), Slice(0, H), Slice(0, W)});
    EXPECT_LT((tiled.to(torch::kFloat64) - reference).abs().max().item<double>(), 1e-5) << blend;
  }
}

// A case on a 2.5 mm × 0.9 mm grid segmented at 1.5 × 1.25 × 1.25 mm: the label map is on the input's grid, and equals
// resample -> z-score -> voxel-wise network -> resample back -> argmax done on whole volumes.
TEST(VolumeWindow, ResampledCaseEqualsTheWholeVolumeOperations) {
  const auto dir = fs::temp_directory_path() / ("spvit_volume_case_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  torch::manual_seed(3);
  const int64_t D = 14, H = 23, W = 26;
  auto image = torch::randn({D, H, W}) * 30 + 100;
  data::NiftiHeader g;
  g.affine = {{{-0.9, 0, 0, 5}, {0, 0.9, 0, -7}, {0, 0, 2.5, 11}, {0, 0, 0, 1}}};
  g.sform_code = g.qform_code = 1;
  const std::string path = (dir / "case_0000.nii.gz").string();
  data::write_nifti(path, g, {W, H, D}, image.contiguous().data_ptr<float>());
  VolumeModelData m;
  m.normalization.channels = {{"zscore", 0, 1, 0, 0}};
  m.channel_names = {"T2"};
  m.class_names = {"background", "a", "b"};
  m.spacing = std::array<double, 3>{1.25, 1.25, 1.5};
  m.window = 16;
  const auto cases = volume_cases(path, 1);
  ASSERT_EQ(cases.size(), 1u);
  EXPECT_EQ(cases[0].name, "case");
  VolumeWindowOptions o;
  o.batch = 4;
  const auto s = segment_volume(cases[0], m, 3, voxelwise(), o);
  EXPECT_EQ(s.labels.sizes(), torch::IntArrayRef({D, H, W}));
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 4; ++c) EXPECT_NEAR(s.header.affine[r][c], g.affine[r][c], 1e-6) << "the input's geometry";
  }
  const auto& sp = s.header.spacing;  // as stored (float32)
  const auto grid = data::ResampleGrid::between({D, H, W}, {sp[2], sp[1], sp[0]}, {1.5, 1.25, 1.25});
  EXPECT_EQ(s.model_shape, grid.out_shape);
  auto resampled = data::resample_volume(image.to(torch::kFloat64), grid, data::Interpolation::linear);
  resampled = (resampled - resampled.mean()) / resampled.std(/*unbiased=*/false);
  const auto probs = voxelwise_probs(resampled.unsqueeze(0))[0];
  const auto expected = data::resample_volume(probs, grid.inverse(), data::Interpolation::linear).argmax(0);
  const double differ = (s.labels.to(torch::kLong) != expected).sum().item<double>() / static_cast<double>(D * H * W);
  EXPECT_LT(differ, 1e-3) << "only float32-vs-float64 near-ties may differ";
  EXPECT_GT(torch::bincount(s.labels.flatten().to(torch::kLong)).size(0), 1) << "a non-trivial label map";
  fs::remove_all(dir);
}

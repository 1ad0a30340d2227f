// Volume resampling (data/volume_resample.h) against independent references: LibTorch's grid_sample (trilinear and
// nearest, border padding, align_corners) at the coordinates the grid convention defines, computed in float64; a
// linear function reproduced exactly; slab-by-slab output equal to the whole volume's.
#include <gtest/gtest.h>

#include <cmath>

#include "spvit/data/volume_resample.h"

using namespace spvit::data;

namespace {

// grid_sample's reference at output voxel o -> input coordinate o * step (clamped), in float64.
torch::Tensor reference(const torch::Tensor& volume, const ResampleGrid& g, const std::string& mode) {
  std::vector<torch::Tensor> axes;
  for (int d = 0; d < 3; ++d) {
    auto p = torch::arange(g.out_shape[d], torch::kFloat64) * g.step[d];
    p = p.clamp(0, static_cast<double>(g.in_shape[d] - 1));
    // align_corners=true: -1 and 1 are the centres of the first and last input voxels.
    axes.push_back(g.in_shape[d] == 1 ? torch::zeros_like(p) : p * 2 / static_cast<double>(g.in_shape[d] - 1) - 1);
  }
  auto mesh = torch::meshgrid({axes[0], axes[1], axes[2]}, "ij");
  // grid_sample's last grid dimension is (x, y, z) = (W, H, D).
  auto grid = torch::stack({mesh[2], mesh[1], mesh[0]}, -1).unsqueeze(0);
  auto input = volume.to(torch::kFloat64).unsqueeze(0).unsqueeze(0);
  const int64_t interpolation = mode == "nearest" ? 1 : 0;
  return at::grid_sampler(input, grid, interpolation, /*padding border*/ 1, /*align_corners*/ true)[0][0];
}

}  // namespace

TEST(VolumeResample, LinearEqualsGridSampleTrilinear) {
  torch::manual_seed(3);
  const auto v = torch::rand({9, 11, 13}, torch::kFloat64);
  for (const auto& target : {std::array<double, 3>{1.0, 0.7, 0.55}, std::array<double, 3>{3.1, 1.4, 2.2}}) {
    const auto g = ResampleGrid::between({9, 11, 13}, {2.5, 0.9, 0.9}, target);
    const auto out = resample_volume(v, g, Interpolation::linear);
    ASSERT_EQ(out.sizes(), torch::IntArrayRef({g.out_shape[0], g.out_shape[1], g.out_shape[2]}));
    EXPECT_LT((out - reference(v, g, "bilinear")).abs().max().item<double>(), 1e-12);
  }
}

TEST(VolumeResample, NearestEqualsGridSampleNearestAndKeepsLabelValues) {
  torch::manual_seed(4);
  const auto labels = torch::randint(0, 4, {7, 10, 12}, torch::kInt16);
  // Steps whose coordinates never fall on a half voxel (grid_sample rounds halves to even, this code up).
  const auto g = ResampleGrid::between({7, 10, 12}, {3.0, 1.0, 1.0}, {1.3, 0.7, 1.45});
  const auto out = resample_volume(labels, g, Interpolation::nearest);
  EXPECT_EQ(out.scalar_type(), torch::kInt16);
  EXPECT_TRUE(torch::equal(out.to(torch::kFloat64), reference(labels, g, "nearest")));
}

TEST(VolumeResample, ReproducesALinearFunctionAndScalesTheShape) {
  // f = 2z + 3y - x sampled on the input grid: linear interpolation inside the volume is exact.
  const std::array<int64_t, 3> shape{6, 8, 10};
  auto z = torch::arange(6, torch::kFloat64).view({6, 1, 1}), y = torch::arange(8, torch::kFloat64).view({1, 8, 1}),
       x = torch::arange(10, torch::kFloat64).view({1, 1, 10});
  const auto f = 2 * z + 3 * y - x;
  const auto g = ResampleGrid::between(shape, {2.0, 1.0, 1.0}, {1.0, 0.5, 2.0});
  EXPECT_EQ(g.out_shape, (std::array<int64_t, 3>{12, 16, 5}));
  const auto out = resample_volume(f, g, Interpolation::linear);
  for (int64_t a = 0; a < 11; ++a) {      // z' = a / 2 stays inside [0, 5]
    for (int64_t b = 0; b < 15; ++b) {    // y' = b / 2 inside [0, 7]
      for (int64_t c = 0; c < 5; ++c) {   // x' = 2c inside [0, 9]
        EXPECT_NEAR(out[a][b][c].item<double>(), 2 * (a * 0.5) + 3 * (b * 0.5) - 2.0 * c, 1e-12);
      }
    }
  }
  // The way back lands on the input grid's shape.
  EXPECT_EQ(g.inverse().out_shape, shape);
}

TEST(VolumeResample, SlabsEqualTheWholeVolume) {
  torch::manual_seed(5);
  const auto v = torch::rand({2, 17, 6, 7});  // leading channel dimension
  for (const auto& target : {std::array<double, 3>{0.8, 1.0, 1.0}, std::array<double, 3>{3.3, 1.0, 1.0}}) {
    const auto g = ResampleGrid::between({17, 6, 7}, {2.0, 1.0, 1.0}, target);
    const auto whole = resample_volume(v, g, Interpolation::linear);
    for (int64_t o0 = 0; o0 < g.out_shape[0]; o0 += 3) {
      const int64_t o1 = std::min(g.out_shape[0], o0 + 3);
      const auto [i0, i1] = g.input_slices(o0, o1);
      const auto slab = resample_slab(v.narrow(1, i0, i1 - i0), i0, g, o0, o1, Interpolation::linear);
      EXPECT_TRUE(torch::equal(slab, whole.narrow(1, o0, o1 - o0))) << "slices " << o0 << ".." << o1;
      const auto labels = resample_slab(v.narrow(1, i0, i1 - i0), i0, g, o0, o1, Interpolation::nearest);
      EXPECT_TRUE(torch::equal(labels, resample_volume(v, g, Interpolation::nearest).narrow(1, o0, o1 - o0)));
    }
  }
}

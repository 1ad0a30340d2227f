// Layout bookkeeping and files: Morton keys, validation, JSON/HDF5 round trips, image files and the generator.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "patch_test_util.h"
#include "spvit/build_info.h"
#include "spvit/core/error.h"
#include "spvit/patch/image_io.h"
#include "spvit/patch/patcher.h"

namespace spvit::patch {
namespace {

using testing::expect_error;

// A unique scratch path per test (tests of several binaries may run at once).
std::string scratch(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("spvit_patch_" + std::to_string(::getpid()) + "_" + name)).string();
}

PatchLayout sample_layout(int dims) {
  PatcherOptions o;
  o.patch = 8;
  o.length = dims == 2 ? 205 : 120;
  o.min_side = 2;
  o.scorer = "gradient";
  const std::vector<int64_t> size = dims == 2 ? std::vector<int64_t>{40, 70} : std::vector<int64_t>{12, 20, 30};
  return AdaptiveTreePatcher(dims, o).plan(testing::structured_image(size, 1, 3));
}

void expect_equal(const PatchLayout& a, const PatchLayout& b) {
  EXPECT_EQ(a.spatial_dims, b.spatial_dims);
  EXPECT_EQ(a.patch, b.patch);
  EXPECT_EQ(a.root_side, b.root_side);
  EXPECT_EQ(a.min_side, b.min_side);
  EXPECT_EQ(a.image_size, b.image_size);
  EXPECT_EQ(a.order, b.order);
  EXPECT_EQ(a.scorer, b.scorer);
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.y, b.y);
  EXPECT_EQ(a.z, b.z);
  EXPECT_EQ(a.side, b.side);
  EXPECT_EQ(a.level, b.level);
}

TEST(PatchLayoutIo, MortonKeyInterleavesBits) {
  auto gen = testing::generator(1);
  for (int i = 0; i < 1000; ++i) {
    const auto c = torch::randint(0, 1 << 20, {3}, gen).to(torch::kLong);
    const int64_t x = c[0].item<int64_t>(), y = c[1].item<int64_t>(), z = c[2].item<int64_t>();
    uint64_t k2 = 0, k3 = 0;
    for (int b = 0; b < 20; ++b) {
      k2 |= static_cast<uint64_t>((x >> b) & 1) << (2 * b) | static_cast<uint64_t>((y >> b) & 1) << (2 * b + 1);
      k3 |= static_cast<uint64_t>((x >> b) & 1) << (3 * b) | static_cast<uint64_t>((y >> b) & 1) << (3 * b + 1) |
            static_cast<uint64_t>((z >> b) & 1) << (3 * b + 2);
    }
    ASSERT_EQ(morton_key(2, x, y), k2);
    ASSERT_EQ(morton_key(3, x, y, z), k3);
  }
  EXPECT_EQ(root_side_for(16, {100, 33}), 128);
  EXPECT_EQ(root_side_for(16, {16, 3}), 16);
  EXPECT_EQ(root_side_for(12, {1, 13}), 24);
}

TEST(PatchLayoutIo, ValidateNamesTheInconsistency) {
  const auto good = sample_layout(2);
  good.validate();
  auto overlap = good;
  overlap.side[0] *= 2;  // now covers its neighbours (and its level is wrong too)
  overlap.level[0] -= 1;
  expect_error([&] { overlap.validate(); }, "overlap");
  auto level = good;
  level.level[3] += 1;
  expect_error([&] { level.validate(); }, "not S/2^level");
  auto misaligned = good;
  misaligned.x[2] += 1;
  expect_error([&] { misaligned.validate(); }, "not aligned");
  auto order = good;
  std::swap(order.x[0], order.x[1]);
  std::swap(order.y[0], order.y[1]);
  std::swap(order.side[0], order.side[1]);
  std::swap(order.level[0], order.level[1]);
  expect_error([&] { order.validate(); }, "not in Z-order");
  auto lengths = good;
  lengths.x.pop_back();
  expect_error([&] { lengths.validate(); }, "differ in length");
  auto root = good;
  root.root_side = 24;
  expect_error([&] { root.validate(); }, "root side 24");
}

TEST(PatchLayoutIo, JsonAndHdf5RoundTrip) {
  for (int dims : {2, 3}) {
    auto layout = sample_layout(dims);
    layout.append_empty(2);
    const auto json_path = scratch("layout.json"), h5_path = scratch("layout.h5");
    save_json(layout, json_path);
    expect_equal(load_json(json_path), layout);
    expect_equal(layout_from_json(to_json(layout, 2)), layout);
    save_hdf5(layout, h5_path);
    expect_equal(load_hdf5(h5_path), layout);
    std::remove(json_path.c_str());
    std::remove(h5_path.c_str());
  }
  const auto uniform = UniformPatcher(2, 12, 0, TokenOrder::Raster).plan_for_size({30, 50});
  expect_equal(layout_from_json(to_json(uniform)), uniform);
}

TEST(PatchLayoutIo, UnreadableOrCorruptFilesAreClearErrors) {
  expect_error([] { load_json("/nonexistent/layout.json"); }, "cannot open layout file '/nonexistent/layout.json'");
  expect_error([] { load_hdf5("/nonexistent/layout.h5"); }, "cannot open layout file '/nonexistent/layout.h5'");
  const auto text = scratch("not_a_layout.txt");
  std::ofstream(text) << "{\"format\": \"something else\"}";
  expect_error([&] { load_json(text); }, "not a spvit patch layout");
  expect_error([&] { load_hdf5(text); }, "is not an HDF5 file");
  std::ofstream(text) << "{ not json";
  expect_error([&] { load_json(text); }, "does not parse");
  auto bad = sample_layout(2);
  bad.x[1] += 1;
  std::ofstream(text) << to_json(bad);
  expect_error([&] { load_json(text); }, "not aligned");
  std::remove(text.c_str());
  expect_error([] { read_image("/nonexistent/slide.png"); }, "cannot open image '/nonexistent/slide.png'");
#if SPVIT_HAVE_OPENCV
  const auto junk = scratch("junk.png");
  std::ofstream(junk) << "this is not a PNG";
  expect_error([&] { read_image(junk); }, "not an image OpenCV can decode");
  std::remove(junk.c_str());
#endif
}

#if SPVIT_HAVE_OPENCV
TEST(PatchLayoutIo, PngRoundTripAndLayoutDrawing) {
  const auto img = synthetic_tissue(300, 5, 0.5);
  const auto path = scratch("tissue.png");
  write_image(path, img);
  EXPECT_TRUE(torch::equal(read_image(path), img));
  std::remove(path.c_str());
  PatcherOptions o;
  o.length = 100;
  o.scorer = "edges";
  const auto layout = QuadtreePatcher(o).plan(img);
  const auto drawn = draw_layout(img, layout, 150);
  EXPECT_EQ(drawn.sizes(), (std::vector<int64_t>{150, 150, 3}));
  const auto full = draw_layout(img, layout, 0);
  EXPECT_EQ(full.sizes(), img.sizes());
  EXPECT_FALSE(torch::equal(full, img)) << "leaf borders must be drawn";
}
#endif

TEST(PatchLayoutIo, SyntheticTissueIsDeterministicWithFlatBackground) {
  const auto a = synthetic_tissue(256, 3, 0.4), b = synthetic_tissue(256, 3, 0.4), c = synthetic_tissue(256, 4, 0.4);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  // Background pixels are exactly the background colour; tissue covers roughly the requested fraction.
  const auto background = a.select(2, 0).eq(238).logical_and(a.select(2, 1).eq(234)).logical_and(a.select(2, 2).eq(240));
  const double tissue = 1.0 - background.to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(tissue, 0.25);
  EXPECT_LT(tissue, 0.6);
  EXPECT_THROW(synthetic_tissue(1), ConfigError);
  EXPECT_THROW(synthetic_tissue(64, 1, 1.5), ConfigError);
}

}  // namespace
}  // namespace spvit::patch

// Extract and paste against the classic unfold, per-leaf brute force, exact round trips and a derived error bound.
#include <gtest/gtest.h>

#include "patch_test_util.h"
#include "spvit/core/error.h"
#include "spvit/patch/extract.h"
#include "spvit/patch/patcher.h"

namespace spvit::patch {
namespace {

namespace F = torch::nn::functional;

PatcherOptions variance_options(int64_t patch, int64_t length, int64_t min_side, const std::string& scorer = "variance") {
  PatcherOptions o;
  o.patch = patch;
  o.length = length;
  o.min_side = min_side;
  o.scorer = scorer;
  return o;
}

// The leaf's in-image region of a [.., C] tensor (empty tensor when wholly in the padding).
torch::Tensor leaf_region(const torch::Tensor& image, const PatchLayout& l, int64_t i) {
  std::vector<int64_t> lo, hi;
  for (int a = 0; a < l.spatial_dims; ++a) {
    lo.push_back(std::min(l.coord(a, i), l.image_extent(a)));
    hi.push_back(std::min(l.coord(a, i) + l.side[i], l.image_extent(a)));
  }
  return crop(image, lo, hi);
}

bool inside_image(const PatchLayout& l, int64_t i) {
  for (int a = 0; a < l.spatial_dims; ++a)
    if (l.coord(a, i) + l.side[i] > l.image_extent(a)) return false;
  return true;
}

TEST(PatchExtract, UniformGridEqualsClassicUnfold) {
  const auto img = torch::rand({37, 50, 3}, testing::generator(1));
  const auto layout = UniformPatcher(2, 8, 0, TokenOrder::Raster).plan(img);
  const auto padded = F::pad(img.permute({2, 0, 1}).unsqueeze(0), F::PadFuncOptions({0, 6, 0, 3}));
  const auto unfold = F::unfold(padded, F::UnfoldFuncOptions({8, 8}).stride(8)).squeeze(0).t();
  EXPECT_TRUE(torch::equal(extract(img, layout), unfold));
  // Z-order: the same tokens, permuted.
  const auto z = UniformPatcher(2, 8, 0, TokenOrder::ZOrder).plan(img);
  const auto zt = extract(img, z);
  for (int64_t i = 0; i < z.length(); ++i) {
    const int64_t raster = (z.y[i] / 8) * 7 + z.x[i] / 8;
    ASSERT_TRUE(torch::equal(zt[i], unfold[raster])) << "token " << i;
  }
  // uint8 images give the same values as floats.
  const auto bytes = torch::randint(0, 256, {16, 24, 1}, testing::generator(2), torch::kInt32).to(torch::kByte);
  const auto grid = UniformPatcher(2, 8).plan(bytes);
  const auto ref = F::unfold(bytes.to(torch::kFloat32).permute({2, 0, 1}).unsqueeze(0), F::UnfoldFuncOptions({8, 8}).stride(8));
  EXPECT_TRUE(torch::equal(extract(bytes, grid), ref.squeeze(0).t()));
}

TEST(PatchExtract, UniformVolumeEqualsBruteForceTiles) {
  const auto vol = torch::rand({7, 9, 10, 2}, testing::generator(3));
  const int64_t P = 4;
  const auto layout = UniformPatcher(3, P).plan(vol);
  const auto tokens = extract(vol, layout);
  ASSERT_EQ(tokens.sizes(), (std::vector<int64_t>{2 * 3 * 3, 2 * P * P * P}));
  auto acc = vol.accessor<float, 4>();
  auto tok = tokens.accessor<float, 2>();
  for (int64_t t = 0; t < layout.length(); ++t)
    for (int64_t c = 0, e = 0; c < 2; ++c)
      for (int64_t k = 0; k < P; ++k)
        for (int64_t j = 0; j < P; ++j)
          for (int64_t i = 0; i < P; ++i, ++e) {
            const int64_t z = layout.z[t] + k, y = layout.y[t] + j, x = layout.x[t] + i;
            const float want = (z < 7 && y < 9 && x < 10) ? acc[z][y][x][c] : 0.f;
            ASSERT_EQ(tok[t][e], want) << "token " << t << " element " << e;
          }
}

TEST(PatchExtract, AdaptiveTokensEqualPerLeafReference) {
  const auto img = testing::structured_image({48, 72}, 3, 4);
  const int64_t P = 8;
  const auto layout = QuadtreePatcher(variance_options(P, 301, 2, "gradient")).plan(img);
  int64_t small = 0, large = 0;
  for (const std::string mode : {"nearest", "bilinear"}) {
    ExtractOptions eo;
    eo.enlarge = mode;
    eo.dtype = torch::kFloat64;
    const auto tokens = extract(img, layout, eo);
    for (int64_t i = 0; i < layout.length(); ++i) {
      const int64_t s = layout.side[i];
      if (!layout.intersects_image(i)) {
        ASSERT_EQ(tokens[i].abs().max().item<double>(), 0.0) << "padding/empty token " << i;
        continue;
      }
      // The leaf with zero padding, channel-first [1, C, s, s], built by plain copying.
      auto leaf = torch::zeros({1, 3, s, s}, torch::kFloat64);
      const auto region = leaf_region(img, layout, i).to(torch::kFloat64).permute({2, 0, 1});
      leaf[0].narrow(1, 0, region.size(1)).narrow(2, 0, region.size(2)).copy_(region);
      torch::Tensor want;
      if (s >= P) {
        want = torch::zeros({3, P, P}, torch::kFloat64);  // mean of each (s/P)² block, by loops
        const int64_t f = s / P;
        auto a = leaf.accessor<double, 4>();
        for (int64_t c = 0; c < 3; ++c)
          for (int64_t v = 0; v < P; ++v)
            for (int64_t u = 0; u < P; ++u) {
              double sum = 0;
              for (int64_t y = v * f; y < (v + 1) * f; ++y)
                for (int64_t x = u * f; x < (u + 1) * f; ++x) sum += a[0][c][y][x];
              want[c][v][u] = sum / static_cast<double>(f * f);
            }
        ++large;
      } else if (mode == "nearest") {
        want = leaf[0].repeat_interleave(P / s, 1).repeat_interleave(P / s, 2);
        ++small;
      } else {
        want = F::interpolate(leaf, F::InterpolateFuncOptions().size(std::vector<int64_t>{P, P})
                                        .mode(torch::kBilinear).align_corners(false))[0];
      }
      ASSERT_LT((tokens[i] - want.flatten()).abs().max().item<double>(), 1e-9) << mode << " token " << i << " side " << s;
    }
  }
  EXPECT_GT(small, 0) << "the test layout should have leaves smaller than P";
  EXPECT_GT(large, 0);
}

// An image that is constant on every leaf of `layout` (random integers per leaf and channel).
torch::Tensor piecewise_constant(const PatchLayout& layout, int64_t C, uint64_t seed) {
  auto shape = layout.image_size;
  shape.push_back(C);
  auto img = torch::zeros(shape, torch::kFloat32);
  auto values = torch::randint(0, 256, {layout.length(), C}, testing::generator(seed), torch::kFloat32);
  for (int64_t i = 0; i < layout.length(); ++i) {
    if (layout.intersects_image(i)) leaf_region(img, layout, i).copy_(values[i].expand_as(leaf_region(img, layout, i)));
  }
  return img;
}

TEST(PatchExtract, PasteOfExtractReproducesPiecewiseConstantImagesExactly) {
  // 2-D quadtree (square image = root, and a non-square one), 3-D octree; both enlarge modes.
  struct Case {
    std::vector<int64_t> size;
    int64_t P, m, L;
  };
  for (const auto& c : {Case{{64, 64}, 8, 2, 301}, Case{{40, 72}, 8, 2, 400}, Case{{16, 16, 16}, 4, 1, 300}}) {
    const int dims = static_cast<int>(c.size.size());
    const auto base = testing::structured_image(c.size, 1, 6);
    const auto layout = AdaptiveTreePatcher(dims, variance_options(c.P, c.L, c.m, "gradient")).plan(base);
    const auto img = piecewise_constant(layout, 3, 7);
    for (const std::string mode : {"nearest", "bilinear"}) {
      ExtractOptions eo;
      eo.enlarge = mode;
      const auto restored = paste(extract(img, layout, eo), layout);
      ASSERT_EQ(restored.sizes(), img.sizes());
      for (int64_t i = 0; i < layout.length(); ++i) {
        // Leaves crossing the image border average in the zero padding; all others must come back bit-exactly.
        if (!layout.intersects_image(i) || !inside_image(layout, i)) continue;
        ASSERT_TRUE(torch::equal(leaf_region(restored, layout, i), leaf_region(img, layout, i)))
            << dims << "-D " << mode << " leaf " << i << " side " << layout.side[i];
      }
    }
  }
}

// For an image with per-pixel differences at most G_a along axis a, pasting the extracted tokens of a leaf of side s
// (f = s/P) is off by at most Σ_a G_a · max(1, 2f - 1): each restored pixel is a convex combination of token pixels,
// each the mean of a block lying within 2f - 1 pixels (per axis) of it; leaves smaller than P mix only the ±1
// neighbours. Checked per leaf on smooth 2-D and 3-D images.
TEST(PatchExtract, PasteOfExtractOfSmoothImagesIsWithinTheDerivedBound) {
  for (int dims : {2, 3}) {
    const int64_t n = dims == 2 ? 128 : 32, P = dims == 2 ? 8 : 4;
    auto coords = torch::arange(n, torch::kFloat64);
    torch::Tensor img;
    if (dims == 2) {
      img = 0.5 + 0.25 * torch::sin(coords / 9.0).view({1, n}) + 0.2 * torch::cos(coords / 5.0).view({n, 1});
    } else {
      img = 0.5 + 0.2 * torch::sin(coords / 4.0).view({1, 1, n}) + 0.2 * torch::cos(coords / 3.0).view({1, n, 1}) +
            0.1 * torch::sin(coords / 5.0).view({n, 1, 1});
    }
    img = img.unsqueeze(-1);  // one channel
    double G = 0;  // Σ_a max |difference along a|
    for (int d = 0; d < dims; ++d) G += (img.narrow(d, 1, n - 1) - img.narrow(d, 0, n - 1)).abs().max().item<double>();
    const auto layout = AdaptiveTreePatcher(dims, variance_options(P, dims == 2 ? 200 : 120, P / 4)).plan(img.to(torch::kFloat32));
    ExtractOptions eo;
    eo.dtype = torch::kFloat64;
    const auto restored = paste(extract(img, layout, eo), layout);
    int64_t big = 0;
    for (int64_t i = 0; i < layout.length(); ++i) {
      if (layout.empty_slot(i)) continue;
      const double f = static_cast<double>(layout.side[i]) / static_cast<double>(P);
      const double bound = G * std::max(1.0, 2 * f - 1) + 1e-12;
      const double err = (leaf_region(restored, layout, i) - leaf_region(img, layout, i)).abs().max().item<double>();
      ASSERT_LE(err, bound) << dims << "-D leaf " << i << " side " << layout.side[i];
      big += layout.side[i] > P;
    }
    EXPECT_GT(big, 0) << "the smooth image should get leaves larger than P";
  }
}

TEST(PatchExtract, SegmentRangesMatchTheWholeSequence) {
  const auto img = testing::structured_image({56, 90}, 3, 13);
  const auto layout = QuadtreePatcher(variance_options(8, 500, 2, "gradient")).plan(img);
  const auto tokens = extract(img, layout);
  const auto full = paste(tokens, layout);
  for (const auto& seg : sequence_segments(layout, 3)) {
    const auto part = extract_range(crop(img, seg.lo, seg.hi), seg.lo, layout, seg.begin, seg.end);
    ASSERT_TRUE(torch::equal(part, tokens.narrow(0, seg.begin, seg.end - seg.begin)));
    const auto region = paste_range(part, layout, seg.begin, seg.end, seg.lo, seg.hi);
    // Pixels of the box covered by this range's leaves equal the full paste; the others are zero.
    auto mask = torch::zeros({seg.hi[1] - seg.lo[1], seg.hi[0] - seg.lo[0], 1});
    for (int64_t i = seg.begin; i < seg.end; ++i) {
      if (!layout.intersects_image(i)) continue;
      mask.narrow(0, layout.y[i] - seg.lo[1], std::min(layout.y[i] + layout.side[i], seg.hi[1]) - layout.y[i])
          .narrow(1, layout.x[i] - seg.lo[0], std::min(layout.x[i] + layout.side[i], seg.hi[0]) - layout.x[i])
          .fill_(1);
    }
    ASSERT_TRUE(torch::equal(region, crop(full, seg.lo, seg.hi) * mask));
    if (seg.hi[0] - seg.lo[0] > 1) {  // a crop missing part of the range's leaves is refused
      EXPECT_THROW(extract_range(crop(img, seg.lo, {seg.hi[0] - 1, seg.hi[1]}), seg.lo, layout, seg.begin, seg.end), DataError);
    }
  }
}

TEST(PatchExtract, MetadataEqualsLeafGeometry) {
  const auto img = testing::structured_image({30, 45}, 3, 14);
  const auto layout = QuadtreePatcher(variance_options(4, 100, 1)).plan(img);  // 1 + 3·33 = 100 leaves: add empties below
  auto padded = layout;
  padded.append_empty(5);
  const auto meta = token_metadata(padded, 3, 105);
  ASSERT_EQ(meta.coords.sizes(), (std::vector<int64_t>{102, 3}));
  const double S = static_cast<double>(layout.root_side);
  for (int64_t r = 0; r < 102; ++r) {
    const int64_t i = r + 3;
    EXPECT_EQ(meta.index[r].item<int64_t>(), i);
    EXPECT_EQ(meta.valid[r].item<bool>(), !padded.empty_slot(i));
    if (padded.empty_slot(i)) {
      EXPECT_EQ(meta.coords[r].abs().sum().item<float>(), 0.f);
      continue;
    }
    const double s = static_cast<double>(padded.side[i]);
    EXPECT_FLOAT_EQ(meta.coords[r][0].item<float>(), static_cast<float>((padded.x[i] + s / 2) / S));
    EXPECT_FLOAT_EQ(meta.coords[r][1].item<float>(), static_cast<float>((padded.y[i] + s / 2) / S));
    EXPECT_FLOAT_EQ(meta.coords[r][2].item<float>(), static_cast<float>(std::log2(s) / std::log2(S)));
  }
}

TEST(PatchExtract, RunsOnCudaTensorsWhenPresent) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build";
  const auto img = testing::structured_image({64, 96}, 3, 15);
  const auto layout = QuadtreePatcher(variance_options(8, 300, 2, "gradient")).plan(img);
  const auto cpu = extract(img, layout);
  const auto gpu = extract(img.to(torch::kCUDA), layout);
  EXPECT_LT((gpu.cpu() - cpu).abs().max().item<float>(), 1e-3);
  EXPECT_LT((paste(gpu, layout).cpu() - paste(cpu, layout)).abs().max().item<float>(), 1e-3);
}

TEST(PatchExtract, BadInputsAreClearErrors) {
  const auto img = torch::rand({32, 32, 3});
  const auto layout = UniformPatcher(2, 8).plan(img);
  EXPECT_THROW(extract(torch::rand({32, 31, 3}), layout), DataError);
  EXPECT_THROW(extract(torch::rand({0, 32, 3}), layout), DataError);
  EXPECT_THROW(paste(torch::rand({16, 63}), layout), DataError);
  EXPECT_THROW(paste(torch::rand({15, 64}), layout), DataError);
  EXPECT_THROW(extract_range(img, {0, 0}, layout, 3, 99), ConfigError);
  ExtractOptions eo;
  eo.enlarge = "cubic";
  EXPECT_THROW(extract(img, layout, eo), ConfigError);
}

}  // namespace
}  // namespace spvit::patch

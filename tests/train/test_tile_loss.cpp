// The tile loss against the pixel loss, tile targets, the patcher-threshold augmentation draw and the progress line.
// Single-process tests (they need no communication; under mpirun every rank runs them on its own).
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "spvit/core/error.h"
#include "spvit/data/augment.h"
#include "spvit/data/synthetic.h"
#include "spvit/patch/extract.h"
#include "spvit/patch/patcher.h"
#include "spvit/train/losses.h"
#include "spvit/train/progress.h"
#include "spvit/data/token_sampling.h"
#include "spvit/train/losses.h"

namespace spvit::train {
namespace {

using data::LayoutSampling;  // token sampling lives in the data layer
using data::plan_layout;
using data::tile_targets;

// An adaptive layout of a random image of `spatial` pixels (image sides need not be multiples of the leaves:
// leaves then cross the border into the padding).
patch::PatchLayout random_layout(const std::vector<int64_t>& spatial, int64_t patch, int64_t length, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto shape = spatial;
  shape.push_back(1);
  auto image = torch::randint(0, 255, shape, gen, torch::kInt32).to(torch::kByte);
  patch::PatcherOptions o;
  o.spatial_dims = static_cast<int64_t>(spatial.size());
  o.patch = patch;
  o.length = length;
  o.min_side = 1;
  o.scorer = "variance";
  return patch::make_patcher(o)->plan(image, 0);
}

// A mask that is constant on every block a tile cell stands for (s/P pixels per axis for leaves of side s >= P; one
// pixel, which several cells share, for smaller ones), with random labels; and logit tiles constant on every token.
std::pair<torch::Tensor, torch::Tensor> piecewise_constant_case(const patch::PatchLayout& l, int64_t classes,
                                                                uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const int d = l.spatial_dims;
  auto mask = torch::zeros(l.image_size, torch::kLong);
  for (int64_t t = 0; t < l.length(); ++t) {
    if (l.empty_slot(t)) continue;
    const int64_t s = l.side[static_cast<size_t>(t)], block = std::max<int64_t>(1, s / l.patch);
    const int64_t cells = s / block;
    const int64_t count = d == 2 ? cells * cells : cells * cells * cells;
    auto labels = torch::randint(0, classes, {count}, gen, torch::kLong);
    for (int64_t c = 0; c < count; ++c) {
      torch::Tensor view = mask;
      int64_t rest = c;
      // cell index (x fastest); block (x0, y0[, z0]) in coordinate order, clipped to the image.
      std::vector<int64_t> cell_coord(static_cast<size_t>(d));
      for (int a = 0; a < d; ++a) cell_coord[static_cast<size_t>(a)] = rest % cells, rest /= cells;
      bool inside = true;
      for (int a = 0; a < d && inside; ++a) {
        const int64_t lo = l.coord(a, t) + cell_coord[static_cast<size_t>(a)] * block;
        const int64_t hi = std::min(lo + block, l.image_extent(a));
        inside = lo < hi;
        if (inside) view = view.narrow(d - 1 - a, lo, hi - lo);
      }
      if (inside) view.fill_(labels[c]);
    }
  }
  std::vector<int64_t> tile_shape{1, l.length(), classes};
  for (int a = 0; a < d; ++a) tile_shape.push_back(l.patch);
  std::vector<int64_t> per_token{1, l.length(), classes};
  for (int a = 0; a < d; ++a) per_token.push_back(1);
  auto tiles = torch::randn(per_token, gen, torch::kFloat64).expand(tile_shape).contiguous();
  return {mask, tiles};
}

void expect_tile_loss_equals_pixel_loss(const std::vector<int64_t>& spatial, int64_t patch, int64_t length) {
  const int64_t K = 3;
  const auto layout = random_layout(spatial, patch, length, 11);
  auto [mask, tiles] = piecewise_constant_case(layout, K, 12);
  const int d = layout.spatial_dims;
  std::vector<int64_t> origin(static_cast<size_t>(d), 0);
  auto [target, weight] = tile_targets(mask, origin, layout, 0, layout.length());
  double pixels = 1;
  for (auto e : spatial) pixels *= static_cast<double>(e);
  EXPECT_NEAR(weight.sum().item<double>(), pixels, 1e-9) << "cell weights must add up to the image's pixels";

  // Pixel logits: the tiles pasted to the image ([spatial..., K] -> [1, K, spatial...]).
  auto pasted = patch::paste(tiles[0].reshape({layout.length(), -1}), layout);
  std::vector<int64_t> channels_first{d};
  for (int k = 0; k < d; ++k) channels_first.push_back(k);
  auto pixel_logits = pasted.permute(channels_first).unsqueeze(0);
  const LossOptions o{1.0, 1.0};
  auto pixel = segmentation_loss(pixel_logits, mask.unsqueeze(0), pixels, nullptr, o);
  auto tile = tile_loss(tiles, target.unsqueeze(0), weight.unsqueeze(0), pixels, nullptr, o);
  EXPECT_NEAR(tile.ce.item<double>(), pixel.ce.item<double>(), 1e-12);
  EXPECT_NEAR(tile.dice.item<double>(), pixel.dice.item<double>(), 1e-12);
  EXPECT_NEAR(tile.total.item<double>(), pixel.total.item<double>(), 1e-12);
  EXPECT_GT(pixel.ce.item<double>(), 0.1);  // a real loss, not two zeros
}

TEST(TileLoss, EqualsPixelLossForPiecewiseConstantCase2D) {
  expect_tile_loss_equals_pixel_loss({32, 32}, 4, 40);
  expect_tile_loss_equals_pixel_loss({20, 28}, 4, 31);  // leaves cross the border; empty slots
}

TEST(TileLoss, EqualsPixelLossForPiecewiseConstantCase3D) {
  expect_tile_loss_equals_pixel_loss({16, 16, 16}, 4, 50);
  expect_tile_loss_equals_pixel_loss({12, 16, 10}, 4, 40);
}

TEST(TileTargets, CropGivesTheWholeMasksTargets) {
  const auto layout = random_layout({24, 32}, 4, 37, 3);
  auto mask = torch::randint(0, 5, {24, 32}, torch::kLong);
  auto [target, weight] = tile_targets(mask, {0, 0}, layout, 0, layout.length());
  for (const auto& seg : patch::sequence_segments(layout, 3)) {
    auto crop = patch::crop(mask.unsqueeze(-1), seg.lo, seg.hi).squeeze(-1);
    auto [t, w] = tile_targets(crop, seg.lo, layout, seg.begin, seg.end);
    const int64_t n = seg.end - seg.begin;
    EXPECT_TRUE(torch::equal(w, weight.narrow(0, seg.begin, n)));
    // Only cells with a weight carry a label that matters.
    EXPECT_TRUE(torch::equal(t * (w > 0), target.narrow(0, seg.begin, n) * (w > 0)));
  }
}

TEST(ThresholdAugmentation, DrawScalesThresholdsPerSampleAndEpoch) {
  data::AugmentOptions o;
  o.threshold_jitter = 0.4;
  std::set<double> scales;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    for (int64_t index = 0; index < 5; ++index) {
      const auto draw = data::draw_augmentation(o, 7, epoch, index);
      EXPECT_GE(draw.threshold_scale, 0.6);
      EXPECT_LE(draw.threshold_scale, 1.4);
      EXPECT_EQ(draw, data::draw_augmentation(o, 7, epoch, index)) << "the same draw on every call (and rank)";
      scales.insert(draw.threshold_scale);
    }
  }
  EXPECT_EQ(scales.size(), 15u);
  // The jitter does not change the other draws, and without it the scale is 1.
  data::AugmentOptions off;
  const auto a = data::draw_augmentation(off, 7, 1, 2), b = data::draw_augmentation(o, 7, 1, 2);
  EXPECT_EQ(a.threshold_scale, 1.0);
  EXPECT_TRUE(a.flip_x == b.flip_x && a.flip_y == b.flip_y && a.rot90 == b.rot90 && a.brightness == b.brightness);
}

TEST(ThresholdAugmentation, ScaleChangesTheEdgeLayout) {
  try {
    patch::make_scorer("edges");
  } catch (const Error&) {
    GTEST_SKIP() << "no OpenCV: the edges scorer is not available";
  }
  data::SyntheticOptions s;
  s.shape = {64, 64};
  s.count = 1;
  auto dataset = data::make_synthetic_pathology(s);
  LayoutSampling sampling;
  sampling.patcher.kind = "adaptive";
  sampling.patcher.patch = 4;
  sampling.patcher.length = 46;
  sampling.patcher.scorer = "edges";
  sampling.patcher.scoring.canny_low = 20;
  sampling.patcher.scoring.canny_high = 40;
  data::AugmentDraw low, high;
  low.threshold_scale = 0.3;
  high.threshold_scale = 6.0;
  const auto a = plan_layout(*dataset, 0, low, sampling), b = plan_layout(*dataset, 0, high, sampling);
  EXPECT_TRUE(a.side != b.side || a.x != b.x || a.y != b.y) << "the thresholds did not reach the scorer";
  EXPECT_EQ(patch::to_json(plan_layout(*dataset, 0, low, sampling)), patch::to_json(a)) << "not deterministic";
}

TEST(Progress, TrainingLineShowsStepLossRateAndEta) {
  const auto line = format_progress({12, 150, 0.8123456, 1.2e-3, 5300, 83}, 20);
  EXPECT_NE(line.find("step  12/150"), std::string::npos) << line;
  EXPECT_NE(line.find("loss 0.81235"), std::string::npos) << line;
  EXPECT_NE(line.find("lr 1.20e-03"), std::string::npos) << line;
  EXPECT_NE(line.find("5.3k tok/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 1m23s"), std::string::npos) << line;
  // 12/150 of 20 cells is 1.6: one cell filled, then the head.
  EXPECT_NE(line.find("[=>"), std::string::npos) << line;
  EXPECT_NE(format_progress({0, 10, 0, 0, 0, -1}).find("ETA ?"), std::string::npos);
}

// Ignored pixels against a hand computation: the cross-entropy is the mean over each sample's annotated pixels, and
// the soft Dice's per-class sums leave the ignored pixels out.
TEST(SegmentationLoss, IgnoredPixelsCountInNeitherTerm) {
  torch::manual_seed(5);
  const int64_t B = 2, K = 3, H = 4, W = 3;
  const auto logits = torch::randn({B, K, H, W}, torch::kFloat64);
  auto target = torch::randint(0, K, {B, H, W}, torch::kLong);
  target[0][0][0] = -1;
  target[0][2][1] = -1;
  target[1][3][2] = -1;
  LossOptions o;
  o.ignore_negative = true;
  const auto got = segmentation_loss(logits, target, H * W, nullptr, o);

  auto l = logits.accessor<double, 4>();
  auto t = target.accessor<int64_t, 3>();
  double ce = 0, dice = 0;
  for (int64_t b = 0; b < B; ++b) {
    double sum = 0, annotated = 0;
    std::vector<double> inter(K, 0.0), denom(K, 0.0);
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        if (t[b][y][x] < 0) continue;
        double z = 0;
        for (int64_t k = 0; k < K; ++k) z += std::exp(l[b][k][y][x]);
        sum += -(l[b][t[b][y][x]][y][x] - std::log(z));
        annotated += 1;
        for (int64_t k = 0; k < K; ++k) {
          const double p = std::exp(l[b][k][y][x]) / z, one = t[b][y][x] == k ? 1.0 : 0.0;
          inter[static_cast<size_t>(k)] += p * one;
          denom[static_cast<size_t>(k)] += p + one;
        }
      }
    }
    ce += sum / annotated / B;
    for (int64_t k = 0; k < K; ++k) {
      dice += (2 * inter[static_cast<size_t>(k)] + o.smooth) / (denom[static_cast<size_t>(k)] + o.smooth) / (B * K);
    }
  }
  EXPECT_NEAR(got.ce.item<double>(), ce, 1e-12);
  EXPECT_NEAR(got.dice.item<double>(), 1.0 - dice, 1e-12);
  EXPECT_NEAR(got.total.item<double>(), ce + 1.0 - dice, 1e-12);
  // Without the option the -1 labels are not valid class ids: the same call must not pass silently.
  EXPECT_ANY_THROW(segmentation_loss(logits, target, H * W, nullptr, LossOptions{}));
}

}  // namespace
}  // namespace spvit::train

// Augmentation: draws are a function of (seed, epoch, index); transforms match a per-pixel reference; a region of the
// augmented sample can be built from the preimage region alone: read(preimage(r)) + transform == crop(transform(all), r).
#include <gtest/gtest.h>

#include "data_test_util.h"
#include "spvit/data/augment.h"
#include "spvit/data/synthetic.h"

namespace spvit::data {
namespace {

using testing::expect_same_sample;
using testing::same;

// Every spatial draw (flips × quarter turns; z flips for 3D), with colour jitter on half of them.
std::vector<AugmentDraw> all_draws(bool with_z) {
  std::vector<AugmentDraw> out;
  for (int bits = 0; bits < (with_z ? 8 : 4); ++bits) {
    for (int k = 0; k < 4; ++k) {
      AugmentDraw d;
      d.flip_y = bits & 1;
      d.flip_x = bits & 2;
      d.flip_z = bits & 4;
      d.rot90 = k;
      if ((bits + k) % 2) {
        d.brightness = 0.05;
        d.contrast = 1.1;
      }
      out.push_back(d);
    }
  }
  return out;
}

// The augmented image straight from the definition, pixel by pixel: out = rot90^k(flip(in)), where one quarter turn
// of the (y, x) plane is out[i][j] = in[j][W - 1 - i] (torch.rot90's direction) and k is taken mod 2 if H != W.
torch::Tensor reference_transform(const torch::Tensor& in, const AugmentDraw& d, int spatial_dims) {
  auto t = in.clone();
  const int yd = spatial_dims - 2;
  auto flip_dim = [&](int dim) {
    auto out = t.clone();
    const int64_t n = t.size(dim);
    for (int64_t i = 0; i < n; ++i) out.select(dim, i).copy_(t.select(dim, n - 1 - i));
    t = out;
  };
  if (spatial_dims == 3 && d.flip_z) flip_dim(0);
  if (d.flip_y) flip_dim(yd);
  if (d.flip_x) flip_dim(yd + 1);
  const bool square = t.size(yd) == t.size(yd + 1);
  const int k = square ? d.rot90 : (d.rot90 & 2);
  for (int turn = 0; turn < k; ++turn) {
    const int64_t H = t.size(yd), W = t.size(yd + 1);
    std::vector<int64_t> sizes = t.sizes().vec();
    std::swap(sizes[yd], sizes[yd + 1]);
    auto out = torch::empty(sizes, t.options());
    for (int64_t i = 0; i < W; ++i)
      for (int64_t j = 0; j < H; ++j) out.select(yd, i).select(yd, j).copy_(t.select(yd, j).select(yd, W - 1 - i));
    t = out;
  }
  return t;
}

TEST(Augment, DrawsAreDeterministicAndVaried) {
  const AugmentOptions o;
  EXPECT_EQ(draw_augmentation(o, 1, 2, 3), draw_augmentation(o, 1, 2, 3));
  int differing = 0, flips = 0, turns[4] = {0, 0, 0, 0};
  for (int64_t i = 0; i < 200; ++i) {
    const auto a = draw_augmentation(o, 1, 2, i);
    differing += !(a == draw_augmentation(o, 1, 3, i));
    flips += a.flip_x;
    turns[a.rot90] += 1;
    EXPECT_LE(std::abs(a.brightness), o.color_jitter);
    EXPECT_LE(std::abs(a.contrast - 1.0), o.color_jitter);
  }
  EXPECT_GT(differing, 150) << "draws barely change between epochs";
  EXPECT_GT(flips, 60);
  EXPECT_LT(flips, 140);
  for (int k = 0; k < 4; ++k) EXPECT_GT(turns[k], 20) << "quarter turn " << k;
  // Switching augmentations off gives the identity, and does not change the other draws.
  const AugmentOptions none{false, false, 0.0};
  EXPECT_EQ(draw_augmentation(none, 1, 2, 3), AugmentDraw{});
  const AugmentOptions no_flips{false, true, 0.1};
  EXPECT_EQ(draw_augmentation(no_flips, 1, 2, 3).rot90, draw_augmentation(o, 1, 2, 3).rot90);
}

TEST(Augment, MatchesThePerPixelDefinition) {
  const auto square = make_synthetic_pathology(SyntheticOptions{2, {12, 12}, 1, 1})->read(0);
  const auto wide = make_synthetic_pathology(SyntheticOptions{2, {10, 14}, 1, 1})->read(0);
  const auto volume = make_synthetic_mri(SyntheticOptions{3, {6, 8, 8}, 1, 1})->read(0);
  for (const Sample* s : {&square, &wide, &volume}) {
    const int nd = static_cast<int>(s->full_shape.size());
    for (const auto& d : all_draws(nd == 3)) {
      const Sample out = apply_augmentation(*s, d);
      EXPECT_TRUE(same(out.mask, reference_transform(s->mask, d, nd))) << "rot90 " << d.rot90;
      auto image = reference_transform(s->image, d, nd);
      if (d.brightness != 0.0 || d.contrast != 1.0) image = ((image - 0.5) * d.contrast + (0.5 + d.brightness)).clamp(0, 1);
      EXPECT_TRUE(same(out.image, image)) << "rot90 " << d.rot90;
      EXPECT_EQ(out.full_shape, s->full_shape);
      EXPECT_EQ(out.region, full_region(s->full_shape));
    }
  }
}

// read(preimage(r)) then transform == crop(transform(read all), r), for every draw and a set of regions.
void check_preimage_property(const Dataset& d, const std::vector<Region>& targets) {
  const Sample full = d.read(0);
  const int nd = d.spatial_dims();
  for (const auto& draw : all_draws(nd == 3)) {
    const Sample augmented = apply_augmentation(full, draw);
    for (const Region& r : targets) {
      const Region pre = preimage(r, draw, full.full_shape);
      EXPECT_EQ(pre.numel(), r.numel()) << "a preimage is a box of the same size";
      const Sample part = apply_augmentation_to_region(d.read(0, pre), draw, r, full.full_shape);
      expect_same_sample(part, crop(augmented, r));
    }
  }
}

TEST(Augment, PreimageProperty2D) {
  const auto square = make_synthetic_pathology(SyntheticOptions{2, {64, 64}, 1, 2});
  check_preimage_property(*square, {Region{{0, 0}, {64, 64}}, Region{{0, 0}, {16, 64}}, Region{{48, 0}, {64, 64}},
                                    Region{{5, 9}, {30, 40}}, Region{{63, 0}, {64, 1}}});
  const auto wide = make_synthetic_pathology(SyntheticOptions{2, {40, 72}, 1, 2});
  check_preimage_property(*wide, {Region{{0, 0}, {20, 72}}, Region{{20, 0}, {40, 72}}, Region{{3, 50}, {37, 71}}});
}

// Stain jitter: no change with unit scales and zero shifts (deconvolution then reconvolution), the analytic effect of
// doubling the haematoxylin density of a pure-haematoxylin pixel (its colour squares), and the preimage property.
TEST(Augment, StainJitterInverseAnalyticAndRegionConsistent) {
  const auto image = torch::rand({16, 16, 3}, torch::kFloat32).clamp_min(0.01);
  const auto same = jitter_stains(image, {1, 1, 1}, {0, 0, 0});
  EXPECT_LT((same - image).abs().max().item<double>(), 1e-5);

  // A pure-H pixel: optical densities proportional to H = (0.65, 0.70, 0.29), so rgb = exp(-a·H).
  const auto h = torch::tensor({0.65, 0.70, 0.29}, torch::kFloat64);
  const auto pure = torch::exp(-0.4 * h).to(torch::kFloat32).view({1, 1, 3});
  const auto doubled = jitter_stains(pure, {2, 1, 1}, {0, 0, 0});
  EXPECT_LT((doubled - pure * pure).abs().max().item<double>(), 1e-5) << "2x the density squares the transmittance";
  const auto eosin_only = jitter_stains(pure, {1, 3, 1}, {0, 0, 0});
  EXPECT_LT((eosin_only - pure).abs().max().item<double>(), 1e-5) << "no eosin in the pixel: scaling it changes nothing";

  AugmentOptions o;
  o.stain_jitter = 0.2;
  const auto draw = draw_augmentation(o, 3, 1, 5);
  EXPECT_TRUE(draw.stains_jittered());
  AugmentOptions plain;
  const auto without = draw_augmentation(plain, 3, 1, 5);
  EXPECT_FALSE(without.stains_jittered());
  EXPECT_EQ(without.rot90, draw.rot90) << "the stain draw leaves the earlier draws unchanged";
  EXPECT_EQ(without.brightness, draw.brightness);
  const auto d = make_synthetic_pathology(SyntheticOptions{2, {40, 48}, 1, 2});
  const Sample full = d->read(0), augmented = apply_augmentation(full, draw);
  EXPECT_GT((augmented.image - apply_augmentation(full, without).image).abs().max().item<double>(), 0.01);
  for (const Region& r : {Region{{0, 0}, {20, 48}}, Region{{7, 3}, {33, 41}}}) {
    expect_same_sample(apply_augmentation_to_region(d->read(0, preimage(r, draw, full.full_shape)), draw, r,
                                                    full.full_shape),
                       crop(augmented, r));
  }
}

// 8-bit samples (slides) stay 8-bit through flips and turns and become the float image the float path gives when a
// colour change needs float; int16 masks move like int64 ones.
TEST(Augment, EightBitImagesAndInt16MasksGiveWhatTheFloatPathGives) {
  Sample eight;
  eight.full_shape = {12, 10};
  eight.region = full_region(eight.full_shape);
  eight.image = torch::randint(0, 256, {12, 10, 3}, torch::kUInt8);
  eight.mask = torch::randint(-1, 4, {12, 10}, torch::kShort);
  eight.id = "eight";
  Sample wide = eight;
  wide.image = model_image(eight.image);
  wide.mask = model_mask(eight.mask);
  EXPECT_EQ(wide.image.scalar_type(), torch::kFloat32);
  EXPECT_EQ(wide.mask.scalar_type(), torch::kLong);
  AugmentOptions moves;
  moves.color_jitter = 0;
  AugmentOptions colours;
  colours.color_jitter = 0.2;
  colours.stain_jitter = 0.1;
  int moved = 0;
  for (int64_t i = 0; i < 16; ++i) {
    for (const auto& o : {moves, colours}) {
      const auto draw = draw_augmentation(o, 7, 1, i);
      const auto a = apply_augmentation(eight, draw), b = apply_augmentation(wide, draw);
      const bool colour = draw.brightness != 0.0 || draw.contrast != 1.0 || draw.stains_jittered();
      EXPECT_EQ(a.image.scalar_type(), colour ? torch::kFloat32 : torch::kUInt8) << "draw " << i;
      EXPECT_EQ(a.mask.scalar_type(), torch::kShort);
      EXPECT_TRUE(torch::equal(model_image(a.image), b.image)) << "draw " << i;
      EXPECT_TRUE(torch::equal(model_mask(a.mask), b.mask)) << "draw " << i;
      moved += !colour && (draw.rot90 != 0 || draw.flip_x || draw.flip_y);
    }
  }
  EXPECT_GT(moved, 4) << "8-bit images were flipped or turned";
}

TEST(Augment, PreimageProperty3D) {
  const auto vol = make_synthetic_mri(SyntheticOptions{3, {10, 16, 16}, 1, 2});
  check_preimage_property(*vol, {Region{{0, 0, 0}, {5, 16, 16}}, Region{{5, 0, 0}, {10, 16, 16}},
                                 Region{{2, 3, 4}, {9, 13, 11}}});
}

TEST(Augment, RegionTooSmallIsAnError) {
  const auto d = make_synthetic_pathology(SyntheticOptions{2, {32, 32}, 1, 2});
  AugmentDraw flip;
  flip.flip_y = true;
  const Region target{{0, 0}, {8, 32}};
  const auto msg = testing::error_message([&] { apply_augmentation_to_region(d->read(0, target), flip, target, {32, 32}); });
  EXPECT_ERROR_MENTIONS(msg, "needs [24:32, 0:32] of the original, but the sample holds [0:8, 0:32]");
}

}  // namespace
}  // namespace spvit::data

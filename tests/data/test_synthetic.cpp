// Synthetic datasets: determinism by seed, region reads equal to crops of the full sample, plausible content.
#include <gtest/gtest.h>

#include "data_test_util.h"
#include "spvit/data/synthetic.h"

namespace spvit::data {
namespace {

using testing::expect_same_sample;
using testing::same;

std::shared_ptr<Dataset> pathology(std::vector<int64_t> shape, uint64_t seed = 3, int64_t count = 4) {
  return make_synthetic_pathology(SyntheticOptions{2, std::move(shape), count, seed});
}
std::shared_ptr<Dataset> mri(std::vector<int64_t> shape, uint64_t seed = 3, int64_t count = 3) {
  return make_synthetic_mri(SyntheticOptions{3, std::move(shape), count, seed});
}

TEST(SyntheticPathology, DescribesItself) {
  const auto d = pathology({96, 128});
  EXPECT_EQ(d->size(), 4);
  EXPECT_EQ(d->spatial_dims(), 2);
  EXPECT_EQ(d->channels(), 3);
  EXPECT_GE(d->num_classes(), 3);
  EXPECT_EQ(d->spatial_shape(2), (std::vector<int64_t>{96, 128}));
  const Sample s = d->read(1);
  EXPECT_EQ(s.image.sizes(), (std::vector<int64_t>{96, 128, 3}));
  EXPECT_EQ(s.image.scalar_type(), torch::kFloat32);
  EXPECT_EQ(s.mask.sizes(), (std::vector<int64_t>{96, 128}));
  EXPECT_EQ(s.mask.scalar_type(), torch::kLong);
  EXPECT_EQ(s.region, full_region({96, 128}));
  EXPECT_EQ(s.full_shape, (std::vector<int64_t>{96, 128}));
  EXPECT_GE(s.image.min().item<float>(), 0.f);
  EXPECT_LE(s.image.max().item<float>(), 1.f);
  EXPECT_GE(s.mask.min().item<int64_t>(), 0);
  EXPECT_LT(s.mask.max().item<int64_t>(), d->num_classes());
}

TEST(SyntheticPathology, DeterministicBySeed) {
  const auto a = pathology({80, 80}, 5), b = pathology({80, 80}, 5), c = pathology({80, 80}, 6);
  for (int64_t i = 0; i < 2; ++i) {
    expect_same_sample(a->read(i), b->read(i));
    EXPECT_FALSE(same(a->read(i).image, c->read(i).image)) << "seeds 5 and 6 gave the same sample " << i;
  }
  EXPECT_FALSE(same(a->read(0).image, a->read(1).image)) << "samples 0 and 1 are identical";
}

TEST(SyntheticPathology, RegionEqualsCropOfFullRead) {
  const auto d = pathology({200, 300});
  for (int64_t i = 0; i < 2; ++i) {
    const Sample full = d->read(i);
    // Regions that start and end at odd places, cross band (64 rows) and object-cell borders, and touch the edges.
    for (const Region& r : {Region{{0, 0}, {200, 300}}, Region{{17, 33}, {150, 251}}, Region{{63, 0}, {129, 300}},
                            Region{{199, 299}, {200, 300}}, Region{{5, 140}, {6, 300}}}) {
      expect_same_sample(d->read(i, r), crop(full, r));
    }
  }
}

TEST(SyntheticPathology, HasTissueNucleiAndGlands) {
  // Over a few 256² tiles every class shows up, and no class is degenerate.
  const auto d = pathology({256, 256}, 0, 4);
  std::vector<int64_t> counts(d->num_classes(), 0);
  for (int64_t i = 0; i < d->size(); ++i) {
    const auto bins = torch::bincount(d->read(i).mask.flatten(), {}, d->num_classes());
    for (int64_t k = 0; k < d->num_classes(); ++k) counts[k] += bins[k].item<int64_t>();
  }
  const int64_t total = 4 * 256 * 256;
  for (int64_t k = 0; k < d->num_classes(); ++k) {
    EXPECT_GT(counts[k], total / 200) << "class " << k << " (" << synthetic_pathology_classes()[k] << ") is too rare";
    EXPECT_LT(counts[k], total * 9 / 10) << "class " << k << " covers almost everything";
  }
  // Nuclei are darker than the stroma around them, background is brighter than tissue.
  const Sample s = d->read(0);
  const auto grey = s.image.mean(2);
  auto mean_of = [&](int64_t k) { return grey.masked_select(s.mask == k).mean().item<double>(); };
  EXPECT_LT(mean_of(2), mean_of(1));
  EXPECT_GT(mean_of(0), mean_of(1));
}

TEST(SyntheticPathology, HugeSampleRegionsAreConsistent) {
  // A 65536² sample is never generated whole: two overlapping regions must agree on their overlap.
  const auto d = pathology({65536, 65536}, 1, 1);
  const Region a{{40000, 20000}, {40256, 20300}}, b{{40100, 20150}, {40400, 20400}};
  const Sample sa = d->read(0, a), sb = d->read(0, b);
  const Region overlap{{40100, 20150}, {40256, 20300}};
  EXPECT_TRUE(same(crop(sa, overlap).image, crop(sb, overlap).image));
  EXPECT_TRUE(same(crop(sa, overlap).mask, crop(sb, overlap).mask));
  EXPECT_EQ(sa.full_shape, (std::vector<int64_t>{65536, 65536}));
}

TEST(SyntheticMri, DescribesItselfAndHasEveryClass) {
  const auto d = mri({40, 48, 56});
  EXPECT_EQ(d->spatial_dims(), 3);
  EXPECT_EQ(d->channels(), 1);
  EXPECT_EQ(d->num_classes(), 4);
  const Sample s = d->read(0);
  EXPECT_EQ(s.image.sizes(), (std::vector<int64_t>{40, 48, 56, 1}));
  EXPECT_EQ(s.mask.sizes(), (std::vector<int64_t>{40, 48, 56}));
  for (int64_t i = 0; i < d->size(); ++i) {
    const auto bins = torch::bincount(d->read(i).mask.flatten(), {}, 4);
    for (int64_t k = 0; k < 4; ++k) EXPECT_GT(bins[k].item<int64_t>(), 0) << "sample " << i << " lacks class " << k;
  }
  // Tumour core and edema are brighter than the rest of the brain (FLAIR-like), background darkest.
  const auto img = s.image.squeeze(3);
  auto mean_of = [&](int64_t k) { return img.masked_select(s.mask == k).mean().item<double>(); };
  EXPECT_GT(mean_of(2), mean_of(1));
  EXPECT_LT(mean_of(0), mean_of(1));
}

TEST(SyntheticMri, DeterministicAndRegionEqualsCrop) {
  const auto a = mri({24, 32, 40}, 9), b = mri({24, 32, 40}, 9), c = mri({24, 32, 40}, 10);
  const Sample full = a->read(2);
  expect_same_sample(full, b->read(2));
  EXPECT_FALSE(same(full.image, c->read(2).image));
  for (const Region& r : {Region{{0, 0, 0}, {24, 32, 40}}, Region{{3, 5, 7}, {20, 31, 33}}, Region{{12, 0, 0}, {13, 32, 40}},
                          Region{{23, 31, 39}, {24, 32, 40}}}) {
    expect_same_sample(a->read(2, r), crop(full, r));
  }
}

TEST(Synthetic, BadOptionsAndRegionsAreNamed) {
  auto msg = testing::error_message([] { make_synthetic_mri(SyntheticOptions{2, {64, 64}, 1, 0}); });
  EXPECT_ERROR_MENTIONS(msg, "synthetic MRI volumes are 3-D");
  EXPECT_ERROR_MENTIONS(msg, "64x64");
  msg = testing::error_message([] { make_synthetic_pathology(SyntheticOptions{2, {64, 64}, 0, 0}); });
  EXPECT_ERROR_MENTIONS(msg, "count must be >= 1, got 0");
  const auto d = pathology({64, 64});
  msg = testing::error_message([&] { d->read(0, Region{{0, 10}, {65, 20}}); });
  EXPECT_ERROR_MENTIONS(msg, "region [0:65, 10:20] is empty or outside the sample of shape 64x64");
  msg = testing::error_message([&] { d->read(4); });
  EXPECT_ERROR_MENTIONS(msg, "sample index 4 is out of range [0, 4)");
}

}  // namespace
}  // namespace spvit::data

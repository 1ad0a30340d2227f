// Scorers and summed-area tables against brute-force loops on random images.
#include <gtest/gtest.h>

#include <set>

#include "patch_test_util.h"
#include "spvit/build_info.h"
#include "spvit/core/error.h"
#include "spvit/patch/scorer.h"

#if SPVIT_HAVE_OPENCV
#include <opencv2/imgproc.hpp>
#endif

namespace spvit::patch {
namespace {

using testing::Grid;

// Brute-force sum of a [D, H, W] (or [H, W]) int buffer over [lo, hi) clipped to the extent.
int64_t box_sum(const std::vector<int64_t>& v, const Grid& g, const int64_t* lo, const int64_t* hi, int dims) {
  int64_t total = 0;
  const int64_t z1 = dims == 3 ? std::min(hi[2], g.D) : 1;
  for (int64_t z = dims == 3 ? lo[2] : 0; z < z1; ++z)
    for (int64_t y = lo[1]; y < std::min(hi[1], g.H); ++y)
      for (int64_t x = lo[0]; x < std::min(hi[0], g.W); ++x) total += v[static_cast<size_t>(g.at(x, y, z))];
  return total;
}

std::vector<int64_t> as_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

TEST(PatchScores, SummedAreaTableEqualsBruteForceSums) {
  for (int dims : {2, 3}) {
    for (int64_t cell : {1, 2, 4}) {
      const std::vector<int64_t> shape = dims == 2 ? std::vector<int64_t>{37, 53} : std::vector<int64_t>{9, 13, 22};
      auto gen = testing::generator(static_cast<uint64_t>(cell * 10 + dims));
      auto map = torch::randint(0, 1000, shape, gen, torch::kInt32);
      SummedAreaTable sat(map, cell);
      const auto values = as_vector(map);
      const Grid g{shape.back(), shape[shape.size() - 2], dims == 3 ? shape[0] : 1};
      for (const auto& leaf : testing::random_leaves(dims, 64, cell, 300, 7 + cell)) {
        int64_t hi[3];
        for (int a = 0; a < dims; ++a) hi[a] = leaf[a] + leaf[dims];
        ASSERT_EQ(sat.sum(leaf.data(), hi), box_sum(values, g, leaf.data(), hi, dims))
            << dims << "-D cell " << cell << " corner " << leaf[0] << "," << leaf[1] << " side " << leaf[dims];
      }
    }
  }
}

TEST(PatchScores, GrayMatchesIntegerLuminance) {
  for (int64_t C : {1, 2, 3}) {
    auto img = torch::randint(0, 256, {19, 23, C}, testing::generator(3), torch::kInt32).to(torch::kByte);
    const auto expected = testing::gray_reference(img);
    const auto got = as_vector(to_gray(img));
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], expected[i]) << "C=" << C << " pixel " << i;
  }
  // Float images are read as [0, 1]: the same pixels scaled by 1/255 give the same intensities.
  auto img = torch::randint(0, 256, {11, 7, 3}, testing::generator(4), torch::kInt32).to(torch::kByte);
  EXPECT_TRUE(torch::equal(to_gray(img.to(torch::kFloat64) / 255.0), to_gray(img)));
}

// Region scores of every scorer equal brute-force loops over the pixels of random leaves (2-D, non-square image with
// padding, cell = 4).
class RegionScoreTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RegionScoreTest, EqualsBruteForce) {
  const std::string name = GetParam();
#if !SPVIT_HAVE_OPENCV
  if (name == "edges") GTEST_SKIP() << "edges needs OpenCV";
#endif
  const int64_t H = 45, W = 70, cell = 4, window = 8;
  const auto img = testing::structured_image({H, W}, 3, 11);
  const Grid g{W, H, 1};
  const auto gray = testing::gray_reference(img);
  ScorerOptions opts;
  opts.texture_window = window;
  const auto scorer = make_scorer(name, opts);
  const RegionScores scores = scorer->index(img, 2, cell);

  // Brute-force per-pixel quantities.
  std::vector<int64_t> map(gray.size(), 0);
  auto I = [&](int64_t x, int64_t y) { return static_cast<int64_t>(gray[g.at(Grid::clampi(x, W), Grid::clampi(y, H))]); };
  if (name == "edges") {
    map = as_vector(edge_map(to_gray(img), edge_params(opts, 0)));
  } else if (name == "gradient") {
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) map[g.at(x, y)] = std::abs(I(x + 1, y) - I(x - 1, y)) + std::abs(I(x, y + 1) - I(x, y - 1));
  } else if (name == "texture") {
    static const int off[8][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, 1}, {1, 1}, {1, 0}, {1, -1}, {0, -1}};
    std::vector<int> code(gray.size());
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        int bits[8], ones = 0, changes = 0;
        for (int k = 0; k < 8; ++k) ones += bits[k] = I(x + off[k][1], y + off[k][0]) >= I(x, y);
        for (int k = 0; k < 8; ++k) changes += bits[k] != bits[(k + 1) % 8];
        code[g.at(x, y)] = changes <= 2 ? ones : 9;
      }
    EXPECT_EQ(as_vector(lbp_codes(to_gray(img))), std::vector<int64_t>(code.begin(), code.end()));
    for (int64_t by = 0; by < H; by += window)
      for (int64_t bx = 0; bx < W; bx += window) {
        double hist[10] = {0}, n = 0;
        for (int64_t y = by; y < std::min(by + window, H); ++y)
          for (int64_t x = bx; x < std::min(bx + window, W); ++x, ++n) hist[code[g.at(x, y)]] += 1;
        double e = 0;
        for (double c : hist) e -= c > 0 ? c / n * std::log2(c / n) : 0.0;
        for (int64_t y = by; y < std::min(by + window, H); ++y)
          for (int64_t x = bx; x < std::min(bx + window, W); ++x) map[g.at(x, y)] = std::llround(e * 1024);
      }
  }
  for (const auto& leaf : testing::random_leaves(2, 128, cell, 400, 5)) {
    const int64_t hi[2] = {leaf[0] + leaf[2], leaf[1] + leaf[2]};
    const double got = scores.score(leaf.data(), leaf[2]);
    if (name == "variance") {
      double n = 0, sum = 0, sq = 0;
      for (int64_t y = leaf[1]; y < std::min(hi[1], H); ++y)
        for (int64_t x = leaf[0]; x < std::min(hi[0], W); ++x, ++n) sum += I(x, y);
      const double mean = n > 0 ? sum / n : 0;
      for (int64_t y = leaf[1]; y < std::min(hi[1], H); ++y)
        for (int64_t x = leaf[0]; x < std::min(hi[0], W); ++x) sq += (I(x, y) - mean) * (I(x, y) - mean);
      ASSERT_NEAR(got, sq, 1e-9 * std::max(1.0, sq)) << "leaf " << leaf[0] << "," << leaf[1] << " side " << leaf[2];
    } else if (name == "texture") {
      // The entropy is rounded to 1/1024 bit per block; a last-bit difference of log2 may move one rounding step.
      const double expected = static_cast<double>(box_sum(map, g, leaf.data(), hi, 2));
      const double pixels = static_cast<double>(std::max<int64_t>(0, std::min(hi[0], W) - leaf[0]) *
                                                std::max<int64_t>(0, std::min(hi[1], H) - leaf[1]));
      ASSERT_NEAR(got, expected, pixels) << "leaf " << leaf[0] << "," << leaf[1] << " side " << leaf[2];
    } else {
      ASSERT_EQ(got, static_cast<double>(box_sum(map, g, leaf.data(), hi, 2)))
          << "leaf " << leaf[0] << "," << leaf[1] << " side " << leaf[2];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllScorers, RegionScoreTest, ::testing::Values("edges", "variance", "gradient", "texture"));

TEST(PatchScores, VolumeScoresEqualBruteForce) {
  const int64_t D = 11, H = 14, W = 19, cell = 2;
  const auto vol = testing::structured_image({D, H, W}, 1, 21);
  const Grid g{W, H, D};
  const auto v = testing::gray_reference(vol);
  auto I = [&](int64_t x, int64_t y, int64_t z) {
    return static_cast<int64_t>(v[g.at(Grid::clampi(x, W), Grid::clampi(y, H), Grid::clampi(z, D))]);
  };
  const auto gradient = make_scorer("gradient")->index(vol, 3, cell);
  const auto variance = make_scorer("variance")->index(vol, 3, cell);
  for (const auto& leaf : testing::random_leaves(3, 32, cell, 200, 9)) {
    int64_t grad = 0;
    double n = 0, sum = 0, sumsq = 0;
    for (int64_t z = leaf[2]; z < std::min(leaf[2] + leaf[3], D); ++z)
      for (int64_t y = leaf[1]; y < std::min(leaf[1] + leaf[3], H); ++y)
        for (int64_t x = leaf[0]; x < std::min(leaf[0] + leaf[3], W); ++x, ++n) {
          grad += std::abs(I(x + 1, y, z) - I(x - 1, y, z)) + std::abs(I(x, y + 1, z) - I(x, y - 1, z)) +
                  std::abs(I(x, y, z + 1) - I(x, y, z - 1));
          sum += I(x, y, z);
          sumsq += static_cast<double>(I(x, y, z) * I(x, y, z));
        }
    ASSERT_EQ(gradient.score(leaf.data(), leaf[3]), static_cast<double>(grad));
    const double ssd = n > 0 ? sumsq - sum * sum / n : 0;
    ASSERT_NEAR(variance.score(leaf.data(), leaf[3]), ssd, 1e-6 * std::max(1.0, ssd));
  }
}

TEST(PatchScores, EdgeAugmentationDrawsArePerSampleAndInRange) {
  ScorerOptions o;
  o.augment = true;
  o.seed = 42;
  std::set<double> lows;
  std::set<int64_t> kernels;
  for (uint64_t s = 0; s < 400; ++s) {
    const auto p = edge_params(o, s);
    const auto again = edge_params(o, s);
    ASSERT_EQ(p.low, again.low);
    ASSERT_EQ(p.blur_kernel, again.blur_kernel);
    ASSERT_GE(p.low, 50.0);
    ASSERT_LT(p.low, 100.0);
    ASSERT_EQ(p.high, p.low + 50.0);
    lows.insert(p.low);
    kernels.insert(p.blur_kernel);
  }
  EXPECT_GE(lows.size(), 40u);
  EXPECT_EQ(kernels, (std::set<int64_t>{1, 3, 5, 7}));
  ScorerOptions other = o;
  other.seed = 43;
  int same = 0;
  for (uint64_t s = 0; s < 100; ++s) same += edge_params(o, s).low == edge_params(other, s).low;
  EXPECT_LT(same, 20) << "a different seed must give different draws";
  ScorerOptions fixed;
  EXPECT_EQ(edge_params(fixed, 17).low, fixed.canny_low);
  EXPECT_EQ(edge_params(fixed, 17).blur_kernel, fixed.blur_kernel);
}

#if SPVIT_HAVE_OPENCV
TEST(PatchScores, EdgeMapIsGaussianBlurThenCanny) {
  const auto img = testing::structured_image({40, 64}, 3, 31);
  const auto gray = to_gray(img).contiguous();
  for (const EdgeParams p : {EdgeParams{5, 0.0, 75, 125}, EdgeParams{1, 0.0, 50, 100}, EdgeParams{7, 1.5, 90, 140}}) {
    cv::Mat src(40, 64, CV_8UC1, gray.data_ptr<uint8_t>()), blurred, edges;
    if (p.blur_kernel > 1) cv::GaussianBlur(src, blurred, cv::Size(int(p.blur_kernel), int(p.blur_kernel)), p.blur_sigma);
    else blurred = src;
    cv::Canny(blurred, edges, p.low, p.high);
    const auto map = edge_map(gray, p);
    int64_t count = 0;
    for (int y = 0; y < 40; ++y)
      for (int x = 0; x < 64; ++x) {
        ASSERT_EQ(map[y][x].item<int>(), edges.at<uint8_t>(y, x) ? 1 : 0);
        count += edges.at<uint8_t>(y, x) ? 1 : 0;
      }
    EXPECT_GT(count, 0) << "test image should have edges";
  }
}
#endif

TEST(PatchScores, BadNamesAndImagesAreClearErrors) {
  EXPECT_THROW(make_scorer("sharpness"), ConfigError);
  ScorerOptions o;
  o.texture_window = 1;
  EXPECT_THROW(make_scorer("texture", o), ConfigError);
  const auto scorer = make_scorer("variance");
  try {
    scorer->index(torch::zeros({0, 5, 3}, torch::kByte), 2, 4);
    FAIL() << "expected an error for an empty image";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
  EXPECT_THROW(scorer->index(torch::zeros({5, 3}, torch::kByte), 2, 4), DataError);
  EXPECT_THROW(SummedAreaTable(torch::rand({4, 4}), 1), Error);  // float maps would not sum exactly
}

}  // namespace
}  // namespace spvit::patch

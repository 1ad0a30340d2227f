// The greedy quadtree/octree and the uniform grid: tiling, length, determinism, Z-order, segments, errors — each
// checked against brute-force references written here.
#include <gtest/gtest.h>

#include <functional>

#include "patch_test_util.h"
#include "spvit/core/error.h"
#include "spvit/patch/patcher.h"

namespace spvit::patch {
namespace {

using testing::Grid;
using testing::expect_error;

uint64_t interleave(int dims, const int64_t* c) {  // bit-by-bit Morton key, independent of the library's
  uint64_t key = 0;
  for (int b = 0; b < 21; ++b)
    for (int a = 0; a < dims; ++a) key |= static_cast<uint64_t>((c[a] >> b) & 1) << (b * dims + a);
  return key;
}

PatcherOptions options(int64_t patch, int64_t length, int64_t min_side = 0, const std::string& scorer = "gradient") {
  PatcherOptions o;
  o.patch = patch;
  o.length = length;
  o.min_side = min_side;
  o.scorer = scorer;
  return o;
}

struct RefLeaf {
  int64_t c[3];
  int64_t side;
};

// The greedy refinement written the slow, obvious way: every step scans all leaves for the best splittable one.
PatchLayout reference_greedy(const torch::Tensor& image, int dims, int64_t P, int64_t m, int64_t L) {
  auto spatial = image.sizes().vec();
  spatial.pop_back();
  const Grid g{spatial.back(), spatial[spatial.size() - 2], dims == 3 ? spatial[0] : 1};
  const int64_t ext[3] = {g.W, g.H, g.D};
  const auto v = testing::gray_reference(image);
  auto I = [&](int64_t x, int64_t y, int64_t z) {
    return static_cast<int64_t>(v[g.at(Grid::clampi(x, g.W), Grid::clampi(y, g.H), Grid::clampi(z, g.D))]);
  };
  auto score = [&](const RefLeaf& l) {  // brute-force gradient-magnitude sum over the leaf's in-image pixels
    int64_t s = 0;
    for (int64_t z = dims == 3 ? l.c[2] : 0; z < (dims == 3 ? std::min(l.c[2] + l.side, g.D) : 1); ++z)
      for (int64_t y = l.c[1]; y < std::min(l.c[1] + l.side, g.H); ++y)
        for (int64_t x = l.c[0]; x < std::min(l.c[0] + l.side, g.W); ++x) {
          s += std::abs(I(x + 1, y, z) - I(x - 1, y, z)) + std::abs(I(x, y + 1, z) - I(x, y - 1, z));
          if (dims == 3) s += std::abs(I(x, y, z + 1) - I(x, y, z - 1));
        }
    return s;
  };
  int64_t S = P;
  while (S < *std::max_element(spatial.begin(), spatial.end())) S *= 2;
  std::vector<RefLeaf> leaves = {RefLeaf{{0, 0, 0}, S}};
  const int64_t fan = int64_t{1} << dims;
  while (static_cast<int64_t>(leaves.size()) + fan - 1 <= L) {
    int best = -1;
    int64_t best_score = -1;
    for (size_t i = 0; i < leaves.size(); ++i) {
      const auto& l = leaves[i];
      bool ok = l.side > m;
      for (int a = 0; a < dims; ++a) ok = ok && l.c[a] < ext[a];
      if (!ok) continue;
      const int64_t s = score(l);
      const auto& b = leaves[static_cast<size_t>(std::max(best, 0))];
      if (best < 0 || s > best_score || (s == best_score && (l.side > b.side ||
                                          (l.side == b.side && interleave(dims, l.c) < interleave(dims, b.c))))) {
        best = static_cast<int>(i);
        best_score = s;
      }
    }
    if (best < 0) break;
    const RefLeaf parent = leaves[static_cast<size_t>(best)];
    leaves.erase(leaves.begin() + best);
    for (int64_t k = 0; k < fan; ++k) {
      RefLeaf child{{parent.c[0], parent.c[1], parent.c[2]}, parent.side / 2};
      for (int a = 0; a < dims; ++a) child.c[a] += ((k >> a) & 1) * child.side;
      leaves.push_back(child);
    }
  }
  std::sort(leaves.begin(), leaves.end(),
            [&](const RefLeaf& a, const RefLeaf& b) { return interleave(dims, a.c) < interleave(dims, b.c); });
  PatchLayout out;
  out.spatial_dims = dims;
  out.root_side = S;
  for (const auto& l : leaves) out.append(l.c[0], l.c[1], l.c[2], l.side);
  out.append_empty(L - static_cast<int64_t>(leaves.size()));
  return out;
}

void expect_same_tokens(const PatchLayout& a, const PatchLayout& b) {
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.y, b.y);
  EXPECT_EQ(a.z, b.z);
  EXPECT_EQ(a.side, b.side);
  EXPECT_EQ(a.level, b.level);
}

TEST(PatchTree, QuadtreeEqualsBruteForceGreedy) {
  const auto img = testing::structured_image({48, 72}, 3, 1);  // non-square: the root has padding
  for (int64_t L : {1, 2, 4, 40, 100, 301, 1000}) {
    const QuadtreePatcher patcher(options(8, L, 2));
    const auto layout = patcher.plan(img);
    layout.validate();
    SCOPED_TRACE("L=" + std::to_string(L));
    expect_same_tokens(layout, reference_greedy(img, 2, 8, 2, L));
  }
}

TEST(PatchTree, OctreeEqualsBruteForceGreedy) {
  const auto vol = testing::structured_image({12, 20, 16}, 1, 2);
  for (int64_t L : {1, 8, 50, 204}) {
    const OctreePatcher patcher(options(4, L, 1));
    const auto layout = patcher.plan(vol);
    layout.validate();
    SCOPED_TRACE("L=" + std::to_string(L));
    expect_same_tokens(layout, reference_greedy(vol, 3, 4, 1, L));
  }
}

// Brute-force count of the leaves of the fully refined tree (every in-image leaf split down to min_side).
int64_t exhausted_leaves(int dims, const int64_t* ext, const int64_t* c, int64_t side, int64_t m) {
  bool inside = true;
  for (int a = 0; a < dims; ++a) inside = inside && c[a] < ext[a];
  if (!inside || side <= m) return 1;
  int64_t total = 0;
  for (int k = 0; k < (1 << dims); ++k) {
    int64_t cc[3] = {c[0], c[1], c[2]};
    for (int a = 0; a < dims; ++a) cc[a] += ((k >> a) & 1) * side / 2;
    total += exhausted_leaves(dims, ext, cc, side / 2, m);
  }
  return total;
}

TEST(PatchTree, LeavesTileTheRootAndCountIsLOrExhaustion) {
  struct Case {
    std::vector<int64_t> size;
    int64_t P, m;
  };
  for (const auto& c : {Case{{64, 64}, 16, 4}, Case{{50, 21}, 8, 2}, Case{{5, 3}, 4, 1}, Case{{10, 9, 17}, 4, 2}}) {
    const int dims = static_cast<int>(c.size.size());
    const auto img = testing::structured_image(c.size, 3, 5);
    const int64_t ext[3] = {c.size.back(), c.size[c.size.size() - 2], dims == 3 ? c.size[0] : 1};
    const int64_t zero[3] = {0, 0, 0};
    const int64_t full = exhausted_leaves(dims, ext, zero, root_side_for(c.P, c.size), c.m);
    for (int64_t L : {1, 3, 7, 8, 22, 100, 513, 100000}) {
      const AdaptiveTreePatcher patcher(dims, options(c.P, L, c.m, "variance"));
      const auto layout = patcher.plan(img);
      SCOPED_TRACE(std::to_string(dims) + "-D image, L=" + std::to_string(L));
      for (int cover : testing::coverage(layout)) ASSERT_EQ(cover, 1) << "leaves must cover every root pixel once";
      const int64_t fan = int64_t{1} << dims;
      // Each split adds fan - 1 leaves: the count is the largest 1 + (fan-1)·n ≤ L, unless the tree is exhausted.
      const int64_t reachable = 1 + (L - 1) / (fan - 1) * (fan - 1);
      EXPECT_EQ(layout.num_leaves(), std::min(reachable, full));
      EXPECT_EQ(layout.length(), L);
      for (int64_t i = 0; i < L; ++i) {
        if (layout.empty_slot(i)) continue;
        EXPECT_GE(layout.side[i], c.m);
        if (!layout.intersects_image(i)) {  // padding leaves are children of in-image leaves, never split further
          for (int a = 0; a < dims; ++a) {
            const int64_t parent = layout.coord(a, i) / (2 * layout.side[i]) * (2 * layout.side[i]);
            EXPECT_LT(parent, ext[a]);
          }
        }
      }
    }
  }
}

TEST(PatchTree, DeterministicAcrossRunsAndThreadCounts) {
  const auto img = testing::structured_image({96, 80}, 3, 8);
  for (const std::string scorer : {"variance", "gradient", "texture"}) {
    const QuadtreePatcher patcher(options(16, 700, 0, scorer));
    const int threads = torch::get_num_threads();
    torch::set_num_threads(1);
    const auto a = patcher.plan(img);
    torch::set_num_threads(2);
    const auto b = patcher.plan(img);
    torch::set_num_threads(threads);
    const auto c = patcher.plan(img.clone());
    expect_same_tokens(a, b);
    expect_same_tokens(a, c);
  }
}

TEST(PatchTree, TokensAreInZOrder) {
  const auto img = testing::structured_image({33, 70}, 3, 9);
  const auto layout = QuadtreePatcher(options(8, 400, 2)).plan(img);
  EXPECT_EQ(layout.order, TokenOrder::ZOrder);
  for (int64_t i = 1; i < layout.num_leaves(); ++i) {
    const int64_t a[2] = {layout.x[i - 1], layout.y[i - 1]}, b[2] = {layout.x[i], layout.y[i]};
    ASSERT_LT(interleave(2, a), interleave(2, b)) << "tokens " << i - 1 << ", " << i;
    const int64_t units[2] = {b[0] / layout.min_side, b[1] / layout.min_side};
    ASSERT_EQ(layout.key(i), interleave(2, units));
  }
}

TEST(PatchTree, UniformGridIsRasterOrZOrderOfTheSameLeaves) {
  const std::vector<int64_t> size = {37, 50};
  const auto raster = UniformPatcher(2, 12, 0, TokenOrder::Raster).plan_for_size(size);
  ASSERT_EQ(raster.length(), 4 * 5);
  for (int64_t j = 0, i = 0; j < 4; ++j)
    for (int64_t k = 0; k < 5; ++k, ++i) {
      EXPECT_EQ(raster.x[i], k * 12);
      EXPECT_EQ(raster.y[i], j * 12);
      EXPECT_EQ(raster.side[i], 12);
    }
  raster.validate();
  auto zorder = UniformPatcher(2, 12, 25, TokenOrder::ZOrder).plan_for_size(size);
  zorder.validate();
  EXPECT_EQ(zorder.num_leaves(), 20);
  EXPECT_EQ(zorder.length(), 25);
  std::vector<uint64_t> expected;
  for (int64_t i = 0; i < 20; ++i) expected.push_back(raster.key(i));
  std::sort(expected.begin(), expected.end());
  for (int64_t i = 0; i < 20; ++i) EXPECT_EQ(zorder.key(i), expected[i]);
  const auto cube = UniformPatcher(3, 4, 0).plan_for_size({5, 8, 9});
  EXPECT_EQ(cube.num_leaves(), 2 * 2 * 3);
  cube.validate();
}

TEST(PatchTree, SegmentsAreContiguousWithTightSmallBoxes) {
  const auto img = testing::structured_image({128, 128}, 3, 12);
  const auto layout = QuadtreePatcher(options(8, 1001, 2)).plan(img);
  for (int n : {1, 2, 3, 4, 7, 16}) {
    const auto segs = sequence_segments(layout, n);
    ASSERT_EQ(static_cast<int>(segs.size()), n);
    int64_t next = 0, volume = 0;
    for (int r = 0; r < n; ++r) {
      const auto& s = segs[r];
      EXPECT_EQ(s.begin, next);
      EXPECT_EQ(s.end - s.begin, layout.length() / n + (r < layout.length() % n ? 1 : 0));
      next = s.end;
      int64_t lo[2] = {1 << 30, 1 << 30}, hi[2] = {0, 0};
      for (int64_t i = s.begin; i < s.end; ++i) {
        if (!layout.intersects_image(i)) continue;
        for (int a = 0; a < 2; ++a) {
          lo[a] = std::min(lo[a], layout.coord(a, i));
          hi[a] = std::max(hi[a], std::min(layout.coord(a, i) + layout.side[i], layout.image_extent(a)));
        }
      }
      EXPECT_EQ(s.lo, std::vector<int64_t>(lo, lo + 2));
      EXPECT_EQ(s.hi, std::vector<int64_t>(hi, hi + 2));
      volume += s.box_volume();
    }
    EXPECT_EQ(next, layout.length());
    // Z-order keeps a contiguous range compact: together the boxes are at most 3 images, so on average a rank reads
    // at most 3/N of the image (in an arbitrary order each box would be about the whole image, N images in all).
    EXPECT_LE(volume, 3 * layout.num_pixels()) << n << " segments";
  }
  EXPECT_THROW(sequence_segments(layout, 0), ConfigError);
}

TEST(PatchTree, BadInputsAreClearErrors) {
  expect_error([] { QuadtreePatcher(options(16, 0)); }, "L must be >= 1, got 0");
  expect_error([] { QuadtreePatcher(options(12, 64)); }, "P = 12 must be a power of two");
  expect_error([] { QuadtreePatcher(options(16, 64, 3)); }, "min side 3 must be a power of two");
  expect_error([] { QuadtreePatcher(options(16, 64, 32)); }, "min side 32");
  expect_error([] { QuadtreePatcher(options(16, 64, 0, "nope")); }, "scorer 'nope'");
  const QuadtreePatcher patcher(options(16, 64));
  expect_error([&] { patcher.plan(torch::zeros({0, 10, 3}, torch::kByte)); }, "image is empty");
  expect_error([&] { patcher.plan(torch::zeros({10, 10}, torch::kByte)); }, "expected a [H, W, C] image");
  expect_error([&] { patcher.plan(torch::Tensor()); }, "undefined");
  expect_error([] { UniformPatcher(2, 16, 3).plan_for_size({64, 64}); }, "has 16 tokens, more than the sequence length 3");
  PatcherOptions o = options(16, 64);
  o.kind = "octree";
  expect_error([&] { make_patcher(o); }, "is for 3-D images");
  o.kind = "hexagons";
  expect_error([&] { make_patcher(o); }, "patcher kind 'hexagons'");
  o.kind = "uniform";
  o.patch = 12;  // the uniform grid accepts any patch side
  o.length = 0;
  EXPECT_EQ(make_patcher(o)->plan(torch::zeros({24, 36, 1})).length(), 6);
}

}  // namespace
}  // namespace spvit::patch

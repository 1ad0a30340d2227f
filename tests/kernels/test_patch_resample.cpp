// Batched leaf extract/paste: the LibTorch-op versions against per-element float64 loops (2D and 3D, crops,
// leaves crossing or outside the image, empty slots), against the patch layer's extract/paste on real quadtree and
// octree layouts (what the kernels must equal), and the CUDA kernels against the CPU versions.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernel_test_util.h"
#include "spvit/core/error.h"
#include "spvit/kernels/patch_resample.h"
#include "spvit/patch/extract.h"
#include "spvit/patch/patcher.h"

namespace spvit::kernels {
namespace {

using testing::max_abs_diff;
using testing::seeded;

// A channels-last float64 pixel tensor placed in an image (coordinate order x, y, z), read by coordinates.
struct Pixels {
  torch::Tensor t;
  int d;
  std::vector<int64_t> origin, limit;
  double at(const int64_t* g, int64_t c) const {
    int64_t offset = 0;
    for (int a = d - 1; a >= 0; --a) {
      const int64_t local = g[a] - origin[a], extent = t.size(d - 1 - a);
      if (g[a] >= limit[a] || local < 0 || local >= extent) return 0.0;
      offset = offset * extent + local;
    }
    return t.data_ptr<double>()[offset * t.size(d) + c];
  }
};

// Linear taps along one axis (align_corners = false), in double.
struct Taps {
  int64_t i0, i1;
  double w1;
};
Taps taps(int64_t out, int64_t in_size, int64_t out_size) {
  const double src = std::max(0.0, static_cast<double>(in_size) / out_size * (out + 0.5) - 0.5);
  const int64_t i0 = std::min<int64_t>(static_cast<int64_t>(std::floor(src)), in_size - 1);
  return {i0, i0 + (i0 < in_size - 1 ? 1 : 0), src - i0};
}

// Tokens by definition: for each token, channel and tile pixel, the block mean, the nearest pixel or the
// (bi/tri)linear blend of the leaf's pixels.
torch::Tensor extract_reference(const Pixels& px, const torch::Tensor& leaves, int64_t P, bool nearest) {
  const int d = px.d;
  const int64_t C = px.t.size(d), tile = d == 2 ? P * P : P * P * P, n = leaves.size(0);
  auto out = torch::zeros({n, C * tile}, torch::kFloat64);
  auto o = out.accessor<double, 2>();
  auto lv = leaves.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = lv[i][3];
    if (s == 0) continue;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < tile; ++p) {
        const int64_t tp[3] = {p % P, (p / P) % P, p / (P * P)};
        double value = 0;
        int64_t g[3] = {0, 0, 0};
        if (s >= P) {
          const int64_t f = s / P, fz = d == 3 ? f : 1;
          for (int64_t dz = 0; dz < fz; ++dz)
            for (int64_t dy = 0; dy < f; ++dy)
              for (int64_t dx = 0; dx < f; ++dx) {
                const int64_t off[3] = {dx, dy, dz};
                for (int a = 0; a < 3; ++a) g[a] = lv[i][a] + tp[a] * f + off[a];
                value += px.at(g, c);
              }
          value /= static_cast<double>(f * f * fz);
        } else if (nearest) {
          for (int a = 0; a < d; ++a) g[a] = lv[i][a] + tp[a] * s / P;
          value = px.at(g, c);
        } else {
          Taps t[3];
          for (int a = 0; a < d; ++a) t[a] = taps(tp[a], s, P);
          for (int corner = 0; corner < (1 << d); ++corner) {
            double w = 1;
            for (int a = 0; a < d; ++a) {
              const bool hi = (corner >> a) & 1;
              g[a] = lv[i][a] + (hi ? t[a].i1 : t[a].i0);
              w *= hi ? t[a].w1 : 1 - t[a].w1;
            }
            value += w * px.at(g, c);
          }
        }
        o[i][c * tile + p] = value;
      }
  }
  return out;
}

// The pasted map by definition: each leaf pixel inside the region and the image gets its tile resized.
torch::Tensor paste_reference(const torch::Tensor& tokens, const torch::Tensor& leaves, int64_t P,
                              const std::vector<int64_t>& lo, const std::vector<int64_t>& hi,
                              const std::vector<int64_t>& limit) {
  const int d = static_cast<int>(lo.size());
  const int64_t tile = d == 2 ? P * P : P * P * P, K = tokens.size(1) / tile;
  std::vector<int64_t> shape;
  for (int k = d - 1; k >= 0; --k) shape.push_back(hi[k] - lo[k]);
  shape.push_back(K);
  auto out = torch::zeros(shape, torch::kFloat64);
  auto* o = out.data_ptr<double>();
  auto tk = tokens.accessor<double, 2>();
  auto lv = leaves.accessor<int64_t, 2>();
  for (int64_t i = 0; i < leaves.size(0); ++i) {
    const int64_t s = lv[i][3], sz = d == 3 ? s : 1;
    for (int64_t lz = 0; lz < sz; ++lz)
      for (int64_t ly = 0; ly < s; ++ly)
        for (int64_t lx = 0; lx < s; ++lx) {
          const int64_t l[3] = {lx, ly, lz};
          int64_t offset = 0;
          bool inside = true;
          for (int a = d - 1; a >= 0; --a) {
            const int64_t g = lv[i][a] + l[a];
            inside = inside && g < limit[a] && g >= lo[a] && g < hi[a];
            offset = offset * (hi[a] - lo[a]) + (g - lo[a]);
          }
          if (!inside) continue;
          for (int64_t k = 0; k < K; ++k) {
            auto tile_at = [&](const int64_t* q) { return tk[i][k * tile + (q[2] * P + q[1]) * P + q[0]]; };
            double value = 0;
            if (s > P) {
              Taps t[3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
              for (int a = 0; a < d; ++a) t[a] = taps(l[a], P, s);
              for (int corner = 0; corner < (1 << d); ++corner) {
                double w = 1;
                int64_t q[3] = {0, 0, 0};
                for (int a = 0; a < d; ++a) {
                  const bool up = (corner >> a) & 1;
                  q[a] = up ? t[a].i1 : t[a].i0;
                  w *= up ? t[a].w1 : 1 - t[a].w1;
                }
                value += w * tile_at(q);
              }
            } else {
              const int64_t f = P / s, fz = d == 3 ? f : 1;
              for (int64_t dz = 0; dz < fz; ++dz)
                for (int64_t dy = 0; dy < f; ++dy)
                  for (int64_t dx = 0; dx < f; ++dx) {
                    const int64_t q[3] = {lx * f + dx, ly * f + dy, lz * f + dz};
                    value += tile_at(q);
                  }
              value /= static_cast<double>(f * f * fz);
            }
            o[offset * K + k] = value;
          }
        }
  }
  return out;
}

// Random aligned leaves (may overlap) of sides `sides`, some crossing or beyond the image, plus an empty slot.
torch::Tensor random_leaves(int d, const std::vector<int64_t>& sides, int64_t span, int count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int64_t> x, y, z, side;
  for (int i = 0; i < count; ++i) {
    const int64_t s = sides[rng() % sides.size()];
    const int64_t cells = std::max<int64_t>(1, span / s + 1);
    x.push_back(static_cast<int64_t>(rng() % cells) * s);
    y.push_back(static_cast<int64_t>(rng() % cells) * s);
    z.push_back(d == 3 ? static_cast<int64_t>(rng() % cells) * s : 0);
    side.push_back(s);
  }
  x.push_back(0), y.push_back(0), z.push_back(0), side.push_back(0);  // an empty slot
  return make_leaves(x, y, z, side);
}

// Disjoint leaves: a random quadtree (octree) of root side S, split down to side 1 at random.
void split_tree(int d, int64_t x, int64_t y, int64_t z, int64_t s, std::mt19937& rng, std::vector<int64_t>* out) {
  if (s > 1 && rng() % 3 != 0) {
    const int64_t h = s / 2;
    for (int child = 0; child < (1 << d); ++child)
      split_tree(d, x + (child & 1) * h, y + ((child >> 1) & 1) * h, z + ((child >> 2) & 1) * h, h, rng, out);
    return;
  }
  out->insert(out->end(), {x, y, z, s});
}
torch::Tensor random_tree(int d, int64_t root, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int64_t> rows;
  split_tree(d, 0, 0, 0, root, rng, &rows);
  return torch::tensor(rows, torch::kLong).view({-1, 4});
}

TEST(PatchResample, ExtractMatchesPerElementReference2D) {
  const auto image = seeded({19, 23, 2}, 1, torch::kFloat64);  // y 19, x 23
  const auto leaves = random_leaves(2, {1, 2, 4, 8, 16, 32}, 30, 60, 7);
  const int64_t P = 4;
  // The whole image, and a crop [x 5..23) × [y 3..19) (leaves reaching outside it read zeros there).
  const std::vector<int64_t> limit = {23, 19};
  for (const auto& origin : {std::vector<int64_t>{0, 0}, std::vector<int64_t>{5, 3}}) {
    const auto pixels = image.narrow(0, origin[1], 19 - origin[1]).narrow(1, origin[0], 23 - origin[0]).contiguous();
    for (bool nearest : {false, true}) {
      const auto got = extract_leaves(pixels, origin, limit, leaves, P, nearest, torch::kFloat64);
      const auto want = extract_reference({pixels, 2, origin, limit}, leaves, P, nearest);
      EXPECT_LT(max_abs_diff(got, want), 1e-12) << "origin x " << origin[0] << " nearest " << nearest;
    }
  }
}

TEST(PatchResample, ExtractMatchesPerElementReference3D) {
  const auto image = seeded({6, 7, 9, 1}, 2, torch::kFloat64);  // z 6, y 7, x 9
  const auto leaves = random_leaves(3, {1, 2, 4, 8}, 10, 40, 8);
  const std::vector<int64_t> origin = {0, 0, 0}, limit = {9, 7, 6};
  for (bool nearest : {false, true}) {
    const auto got = extract_leaves(image, origin, limit, leaves, 2, nearest, torch::kFloat64);
    const auto want = extract_reference({image, 3, origin, limit}, leaves, 2, nearest);
    EXPECT_LT(max_abs_diff(got, want), 1e-12) << "nearest " << nearest;
  }
}

TEST(PatchResample, PasteMatchesPerElementReference) {
  struct Case {
    int d;
    int64_t root, P;
    std::vector<int64_t> limit, lo, hi;
  };
  for (const auto& c : {Case{2, 32, 4, {29, 26}, {3, 2}, {27, 30}}, Case{2, 32, 4, {32, 32}, {0, 0}, {32, 32}},
                        Case{3, 16, 4, {13, 11, 9}, {1, 0, 2}, {13, 16, 9}}}) {
    const auto leaves = random_tree(c.d, c.root, 11);
    const int64_t tile = c.d == 2 ? c.P * c.P : c.P * c.P * c.P;
    const auto tokens = seeded({leaves.size(0), 2 * tile}, 3, torch::kFloat64);
    const auto got = paste_leaves(tokens, leaves, c.P, c.lo, c.hi, c.limit);
    const auto want = paste_reference(tokens, leaves, c.P, c.lo, c.hi, c.limit);
    EXPECT_LT(max_abs_diff(got, want), 1e-12) << c.d << "-D, " << leaves.size(0) << " leaves";
  }
}

patch::PatcherOptions tree_options(int64_t patch, int64_t length, int64_t min_side) {
  patch::PatcherOptions o;
  o.patch = patch;
  o.length = length;
  o.min_side = min_side;
  o.scorer = "gradient";
  return o;
}

torch::Tensor leaves_of(const patch::PatchLayout& l, int64_t begin, int64_t end) {
  return make_leaves(l.x, l.y, l.z, l.side).narrow(0, begin, end - begin);
}

std::vector<int64_t> extent_of(const patch::PatchLayout& l) {
  std::vector<int64_t> e;
  for (int a = 0; a < l.spatial_dims; ++a) e.push_back(l.image_extent(a));
  return e;
}

TEST(PatchResample, EqualsThePatchLayerOnAdaptiveLayouts) {
  // uint8 images of structured noise, a quadtree and an octree layout; whole images and per-segment crops.
  for (int d : {2, 3}) {
    const std::vector<int64_t> size = d == 2 ? std::vector<int64_t>{56, 90} : std::vector<int64_t>{20, 24, 28};
    const int64_t P = d == 2 ? 8 : 4;
    auto gen = testing::generator(5);
    auto shape = size;
    shape.push_back(3);
    const auto image = torch::randint(0, 256, shape, gen, torch::kLong).to(torch::kByte);
    const auto layout = patch::AdaptiveTreePatcher(d, tree_options(P, d == 2 ? 500 : 300, P / 4)).plan(image);
    const auto extent = extent_of(layout);
    for (const std::string mode : {"bilinear", "nearest"}) {
      patch::ExtractOptions eo;
      eo.enlarge = mode;
      for (const auto& seg : patch::sequence_segments(layout, 3)) {
        const auto crop = patch::crop(image, seg.lo, seg.hi);
        const auto want = patch::extract_range(crop, seg.lo, layout, seg.begin, seg.end, eo);
        const auto got = extract_leaves(crop, seg.lo, extent, leaves_of(layout, seg.begin, seg.end), P,
                                        mode == "nearest", torch::kFloat32);
        EXPECT_LE(max_abs_diff(got, want), testing::tolerance(torch::kFloat32, 255.0)) << d << "-D " << mode;
      }
    }
    const int64_t tile = d == 2 ? P * P : P * P * P;
    const auto logits = seeded({layout.length(), 2 * tile}, 6, torch::kFloat32);
    const auto want = patch::paste(logits, layout);
    std::vector<int64_t> zero(static_cast<size_t>(d), 0);
    const auto got = paste_leaves(logits, leaves_of(layout, 0, layout.length()), P, zero, extent, extent);
    EXPECT_LE(max_abs_diff(got, want), testing::tolerance(torch::kFloat32, 4.0)) << d << "-D paste";
    const auto seg = patch::sequence_segments(layout, 3)[1];
    const auto region = patch::paste_range(logits.narrow(0, seg.begin, seg.end - seg.begin), layout, seg.begin,
                                           seg.end, seg.lo, seg.hi);
    const auto part = paste_leaves(logits.narrow(0, seg.begin, seg.end - seg.begin),
                                   leaves_of(layout, seg.begin, seg.end), P, seg.lo, seg.hi, extent);
    EXPECT_LE(max_abs_diff(part, region), testing::tolerance(torch::kFloat32, 4.0)) << d << "-D paste_range";
  }
}

TEST(PatchResample, ErrorsNameTheProblem) {
  const auto image = torch::zeros({8, 8, 1});
  try {
    extract_leaves(image, {0, 0}, {8, 8}, make_leaves({0}, {0}, {}, {6}), 4);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("leaf side 6 and patch side P = 4 must differ by a power of two"),
              std::string::npos) << e.what();
  }
  EXPECT_THROW(extract_leaves(image, {0, 0}, {8, 8}, torch::zeros({2, 3}, torch::kLong), 4), Error);
  EXPECT_THROW(paste_leaves(torch::zeros({1, 15}), make_leaves({0}, {0}, {}, {4}), 4, {0, 0}, {8, 8}, {8, 8}), Error);
}

TEST(PatchResampleCuda, KernelsEqualCpuVersions) {
  SPVIT_SKIP_WITHOUT_CUDA();
  const auto gpu = torch::TensorOptions().device(torch::kCUDA);
  for (int d : {2, 3}) {
    const std::vector<int64_t> shape = d == 2 ? std::vector<int64_t>{37, 45, 3} : std::vector<int64_t>{11, 13, 15, 2};
    const std::vector<int64_t> limit = d == 2 ? std::vector<int64_t>{45, 37} : std::vector<int64_t>{15, 13, 11};
    const std::vector<int64_t> origin(static_cast<size_t>(d), 0);
    const int64_t P = d == 2 ? 8 : 4;
    const auto leaves = random_leaves(d, {1, 2, 4, 8, 16, 32}, d == 2 ? 50 : 16, 80, 21);
    const auto image = torch::randint(0, 256, shape, testing::generator(22), torch::kLong).to(torch::kByte);
    for (bool nearest : {false, true}) {
      const auto want = extract_leaves(image.to(torch::kFloat64), origin, limit, leaves, P, nearest, torch::kFloat64);
      for (auto dtype : {torch::kFloat32, torch::kFloat16, torch::kBFloat16}) {
        const auto got = extract_leaves(image.to(gpu), origin, limit, leaves, P, nearest, dtype);
        EXPECT_LE(max_abs_diff(got.cpu(), want), testing::tolerance(dtype, 255.0))
            << d << "-D uint8 -> " << dtype << " nearest " << nearest;
        const auto from_float = extract_leaves(image.to(gpu.dtype(dtype)), origin, limit, leaves, P, nearest, dtype);
        EXPECT_LE(max_abs_diff(from_float.cpu(), want), testing::tolerance(dtype, 255.0)) << d << "-D " << dtype;
      }
    }
    const auto tree = random_tree(d, d == 2 ? 64 : 16, 23);
    const int64_t tile = d == 2 ? P * P : P * P * P;
    const auto tokens = seeded({tree.size(0), 3 * tile}, 24, torch::kFloat64);
    std::vector<int64_t> lo(static_cast<size_t>(d), 1), hi = limit;
    const auto want = paste_leaves(tokens, tree, P, lo, hi, limit);
    for (auto dtype : {torch::kFloat32, torch::kFloat16, torch::kBFloat16}) {
      const auto got = paste_leaves(tokens.to(gpu.dtype(dtype)), tree, P, lo, hi, limit);
      EXPECT_LE(max_abs_diff(got.cpu(), want), testing::tolerance(dtype, 4.0)) << d << "-D paste " << dtype;
    }
  }
}

}  // namespace
}  // namespace spvit::kernels

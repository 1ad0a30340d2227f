// Helpers for the patcher tests: random test images and brute-force references (plain loops, written
// independently of the library's tensor code).
#pragma once
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "spvit/core/error.h"
#include "spvit/patch/layout.h"

namespace spvit::patch::testing {

// Runs fn and expects an spvit::Error whose message contains fragment.
template <typename Fn>
void expect_error(Fn fn, const std::string& fragment) {
  try {
    fn();
    ADD_FAILURE() << "expected an error mentioning '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

inline at::Generator generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

// A uint8 image [spatial..., C] with structure at several scales: random constant blocks plus noise, so that edge,
// gradient and texture maps are neither empty nor everywhere.
inline torch::Tensor structured_image(std::vector<int64_t> spatial, int64_t channels, uint64_t seed) {
  auto gen = generator(seed);
  auto shape = spatial;
  shape.push_back(channels);
  auto img = torch::randint(0, 40, shape, gen, torch::kInt32);
  // 8-pixel blocks of random brightness in one half of the image, flat elsewhere.
  std::vector<int64_t> coarse;
  for (int64_t e : spatial) coarse.push_back((e + 7) / 8);
  coarse.push_back(1);
  auto blocks = torch::randint(0, 200, coarse, gen, torch::kInt32);
  for (size_t d = 0; d < spatial.size(); ++d) blocks = blocks.repeat_interleave(8, static_cast<int64_t>(d)).narrow(static_cast<int64_t>(d), 0, spatial[d]);
  auto half = torch::zeros_like(img);
  half.narrow(static_cast<int64_t>(spatial.size()) - 1, 0, spatial.back() / 2).fill_(1);
  return (img * half + blocks).clamp(0, 255).to(torch::kByte);
}

// Brute-force intensity: ITU-R 601 integer luminance for 3 channels, the channel itself for 1.
inline std::vector<int> gray_reference(const torch::Tensor& image) {
  auto flat = image.reshape({-1, image.size(-1)}).to(torch::kInt32).contiguous();
  const int64_t n = flat.size(0), C = flat.size(1);
  const int* p = flat.data_ptr<int>();
  std::vector<int> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (C == 1) out[i] = p[i];
    else if (C == 3) out[i] = (299 * p[3 * i] + 587 * p[3 * i + 1] + 114 * p[3 * i + 2] + 500) / 1000;
    else {
      int s = 0;
      for (int64_t c = 0; c < C; ++c) s += p[C * i + c];
      out[i] = (s + static_cast<int>(C) / 2) / static_cast<int>(C);
    }
  }
  return out;
}

// Index of (x, y, z) in a row-major [D, H, W] buffer.
struct Grid {
  int64_t W, H, D;
  int64_t at(int64_t x, int64_t y, int64_t z = 0) const { return (z * H + y) * W + x; }
  static int64_t clampi(int64_t v, int64_t n) { return std::min(std::max<int64_t>(v, 0), n - 1); }
};

// Random aligned leaves of a root of side S: side in [min_side, S], corner a multiple of the side.
inline std::vector<std::vector<int64_t>> random_leaves(int dims, int64_t S, int64_t min_side, int count, uint64_t seed) {
  auto gen = generator(seed);
  std::vector<std::vector<int64_t>> out;
  int levels = 0;
  while ((min_side << (levels + 1)) <= S) ++levels;
  for (int i = 0; i < count; ++i) {
    const int64_t side = min_side << torch::randint(0, levels + 1, {1}, gen).item<int64_t>();
    std::vector<int64_t> leaf;
    for (int a = 0; a < dims; ++a) leaf.push_back(side * torch::randint(0, S / side, {1}, gen).item<int64_t>());
    leaf.push_back(side);
    out.push_back(leaf);
  }
  return out;
}

// Number of times each root pixel is covered by a layout's leaves (brute-force painting).
inline std::vector<int> coverage(const PatchLayout& l) {
  const int64_t S = l.root_side;
  const int64_t D = l.spatial_dims == 3 ? S : 1;
  std::vector<int> count(static_cast<size_t>(S * S * D), 0);
  for (int64_t i = 0; i < l.length(); ++i) {
    if (l.empty_slot(i)) continue;
    const int64_t s = l.side[i], z0 = l.spatial_dims == 3 ? l.z[i] : 0, zs = l.spatial_dims == 3 ? s : 1;
    for (int64_t z = z0; z < z0 + zs; ++z)
      for (int64_t y = l.y[i]; y < l.y[i] + s; ++y)
        for (int64_t x = l.x[i]; x < l.x[i] + s; ++x) count[static_cast<size_t>((z * S + y) * S + x)] += 1;
  }
  return count;
}

}  // namespace spvit::patch::testing

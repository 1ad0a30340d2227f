// Slide::read_scaled: a region at any downsample, area-averaged from the coarsest level at least that fine.
//
// Integer scale factors (0.25 -> 0.5 um/px on a 40x scan, the common case) go through OpenCV's INTER_AREA, which for
// an integer factor is the mean of each k × k block: a band of output rows reads exactly its own blocks, so it equals
// the same rows of a whole read. For a fractional factor OpenCV computes its weights relative to the window it is
// given, so a band would not equal a crop of the whole; there each output pixel is averaged here from its absolute
// footprint [j·s, (j+1)·s) with the same operations in the same order wherever the window starts.
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "spvit/core/error.h"
#include "spvit/data/slide.h"

namespace spvit::data {
namespace {

// Source pixels of output index j (absolute) at scale s: [first, last) and each one's overlap with [j·s, (j+1)·s).
struct Footprint {
  int64_t first = 0;
  std::vector<double> weights;
};

Footprint footprint(int64_t j, double s) {
  const double a = static_cast<double>(j) * s, b = static_cast<double>(j + 1) * s;
  Footprint f;
  f.first = static_cast<int64_t>(std::floor(a));
  const auto last = static_cast<int64_t>(std::ceil(b));
  for (int64_t c = f.first; c < last; ++c) {
    const double w = std::min(b, static_cast<double>(c + 1)) - std::max(a, static_cast<double>(c));
    f.weights.push_back(w > 0 ? w : 0.0);
  }
  return f;
}

// Fractional-scale area averaging of `src` (uint8 [sh, sw, 3], whose pixel (0, 0) is source pixel (sy0, sx0)) into
// `out` (uint8 [h, w, 3], output origin x, y).
void area_reduce(const uint8_t* src, int64_t sw, int64_t sx0, int64_t sy0, double s, int64_t x, int64_t y, int64_t w,
                 int64_t h, uint8_t* out) {
  std::vector<Footprint> fx(static_cast<size_t>(w));
  for (int64_t j = 0; j < w; ++j) fx[static_cast<size_t>(j)] = footprint(x + j, s);
  std::vector<double> row(static_cast<size_t>(w * 3)), acc(static_cast<size_t>(w * 3));
  const double area = s * s;
  for (int64_t i = 0; i < h; ++i) {
    const Footprint fy = footprint(y + i, s);
    std::fill(acc.begin(), acc.end(), 0.0);
    for (size_t r = 0; r < fy.weights.size(); ++r) {
      const uint8_t* line = src + (fy.first + static_cast<int64_t>(r) - sy0) * sw * 3;
      for (int64_t j = 0; j < w; ++j) {  // horizontal pass of this source row, then weighted into the output row
        const Footprint& f = fx[static_cast<size_t>(j)];
        double sum[3] = {0, 0, 0};
        for (size_t c = 0; c < f.weights.size(); ++c) {
          const uint8_t* p = line + (f.first + static_cast<int64_t>(c) - sx0) * 3;
          for (int k = 0; k < 3; ++k) sum[k] += f.weights[c] * p[k];
        }
        for (int k = 0; k < 3; ++k) acc[static_cast<size_t>(3 * j + k)] += fy.weights[r] * sum[k];
      }
    }
    uint8_t* o = out + i * w * 3;
    for (int64_t k = 0; k < w * 3; ++k) {
      const double v = std::floor(acc[static_cast<size_t>(k)] / area + 0.5);
      o[k] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
}

}  // namespace

torch::Tensor Slide::read_scaled(double downsample, int64_t x, int64_t y, int64_t w, int64_t h) const {
  SPVIT_CHECK(downsample >= 1.0 - 1e-9, "slide '", path_, "': downsample ", downsample, " is finer than level 0");
  SPVIT_CHECK(w > 0 && h > 0, "empty region ", w, "x", h, " requested from '", path_, "'");
  const int lvl = level_for_downsample(downsample);
  const double s = downsample / level(lvl).downsample;  // level pixels per output pixel, >= 1
  if (std::abs(s - 1.0) < 1e-6) return read_region(lvl, x, y, w, h);
  auto out = torch::empty({h, w, 3}, torch::kUInt8);
  const double k = std::round(s);
  if (std::abs(s - k) < 1e-6) {  // integer factor: OpenCV's block mean
    const auto f = static_cast<int64_t>(k);
    const torch::Tensor src = read_region(lvl, x * f, y * f, w * f, h * f);
    const cv::Mat in(static_cast<int>(h * f), static_cast<int>(w * f), CV_8UC3, src.data_ptr<uint8_t>());
    cv::Mat dst(static_cast<int>(h), static_cast<int>(w), CV_8UC3, out.data_ptr<uint8_t>());
    cv::resize(in, dst, dst.size(), 0, 0, cv::INTER_AREA);
    return out;
  }
  const auto sx0 = static_cast<int64_t>(std::floor(static_cast<double>(x) * s));
  const auto sy0 = static_cast<int64_t>(std::floor(static_cast<double>(y) * s));
  const auto sx1 = static_cast<int64_t>(std::ceil(static_cast<double>(x + w) * s));
  const auto sy1 = static_cast<int64_t>(std::ceil(static_cast<double>(y + h) * s));
  const torch::Tensor src = read_region(lvl, sx0, sy0, sx1 - sx0, sy1 - sy0);
  area_reduce(src.data_ptr<uint8_t>(), sx1 - sx0, sx0, sy0, s, x, y, w, h, out.data_ptr<uint8_t>());
  return out;
}

}  // namespace spvit::data

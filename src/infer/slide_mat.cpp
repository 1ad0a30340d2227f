#include "spvit/infer/slide.h"

#include <cmath>

#include "spvit/core/error.h"

namespace spvit::infer {

cv::Mat read_rgb(const Slide& slide, int level, int64_t x, int64_t y, int64_t w, int64_t h) {
  SPVIT_CHECK(w > 0 && h > 0, "empty region ", w, "x", h, " requested from '", slide.path(), "'");
  cv::Mat out(static_cast<int>(h), static_cast<int>(w), CV_8UC3);
  slide.read_region_into(level, x, y, w, h, out.data);
  return out;
}

cv::Mat read_rgb_scaled(const Slide& slide, double downsample, int64_t x, int64_t y, int64_t w, int64_t h) {
  return to_mat(slide.read_scaled(downsample, x, y, w, h));
}

SlideLevel level_at_downsample(const Slide& slide, double downsample, int* level_index) {
  if (downsample < 1.0 - 1e-6) {
    SPVIT_THROW(DataError, "slide '", slide.path(), "' was scanned at ", slide.mpp_x(), " um/px: a finer resolution ",
                "(downsample ", downsample, ") cannot be read");
  }
  for (int l = 0; l < slide.level_count(); ++l) {
    if (std::abs(slide.level(l).downsample / downsample - 1.0) < 1e-3) {
      *level_index = l;
      return slide.level(l);
    }
  }
  *level_index = -1;
  const auto& L0 = slide.level(0);
  return {std::max<int64_t>(1, static_cast<int64_t>(std::floor(static_cast<double>(L0.width) / downsample))),
          std::max<int64_t>(1, static_cast<int64_t>(std::floor(static_cast<double>(L0.height) / downsample))),
          downsample};
}

cv::Mat to_mat(const torch::Tensor& image) {
  const auto t = image.contiguous();
  SPVIT_CHECK(t.scalar_type() == torch::kUInt8 && (t.dim() == 2 || (t.dim() == 3 && t.size(2) == 3)),
              "to_mat needs a uint8 [h, w] or [h, w, 3] tensor");
  const cv::Mat view(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), t.dim() == 2 ? CV_8U : CV_8UC3,
                     t.data_ptr<uint8_t>());
  return view.clone();
}

}  // namespace spvit::infer

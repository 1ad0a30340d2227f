#include "spvit/infer/slide.h"

#include "spvit/core/error.h"

namespace spvit::infer {

cv::Mat read_rgb(const Slide& slide, int level, int64_t x, int64_t y, int64_t w, int64_t h) {
  SPVIT_CHECK(w > 0 && h > 0, "empty region ", w, "x", h, " requested from '", slide.path(), "'");
  cv::Mat out(static_cast<int>(h), static_cast<int>(w), CV_8UC3);
  slide.read_region_into(level, x, y, w, h, out.data);
  return out;
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

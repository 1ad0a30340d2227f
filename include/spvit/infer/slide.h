// Slides for the inference code, which works on OpenCV images: the data layer's reader (data/slide.h, the one slide
// reader of spvit) with its regions as cv::Mat.
#pragma once
#include <opencv2/core.hpp>

#include "spvit/data/slide.h"

namespace spvit::infer {

using data::Slide;
using data::SlideLevel;

// Slide::read_region as an 8-bit RGB image (CV_8UC3, R first).
cv::Mat read_rgb(const Slide& slide, int level, int64_t x, int64_t y, int64_t w, int64_t h);
// A copy of a uint8 tensor [h, w] (CV_8U) or [h, w, 3] (CV_8UC3).
cv::Mat to_mat(const torch::Tensor& image);

}  // namespace spvit::infer

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
// Slide::read_scaled (any downsample; a level's own when it is one) as an 8-bit RGB image.
cv::Mat read_rgb_scaled(const Slide& slide, double downsample, int64_t x, int64_t y, int64_t w, int64_t h);
// The level `spvit infer` runs on at `downsample` level-0 pixels per pixel: the slide's level of that downsample
// (within 0.1%), else a virtual level of the slide's size divided by it. Throws DataError below 1.
SlideLevel level_at_downsample(const Slide& slide, double downsample, int* level_index);
// A copy of a uint8 tensor [h, w] (CV_8U) or [h, w, 3] (CV_8UC3).
cv::Mat to_mat(const torch::Tensor& image);

}  // namespace spvit::infer

// Tissue detection on a low-resolution level: which level-0 boxes touch tissue (only those tiles are run).
//
// auto : HSV saturation of a low-resolution level, Otsu threshold (never below `min_saturation`, so an empty glass
//        slide stays empty), morphological close then open, connected components below `min_area_um2` (or
//        `min_area_px` level-0 pixels when the slide has no mpp) removed.
// none : everything is tissue.
// mask : a user PNG (any size; non-zero = tissue) stretched over the whole slide.
#pragma once
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>

#include "spvit/infer/slide.h"

namespace spvit::infer {

struct TissueOptions {
  std::string mode = "auto";      // auto | none | path to a mask PNG
  int64_t max_side = 2048;        // detect on the largest level (or a resize of it) no bigger than this
  double min_saturation = 20;     // lower bound of the Otsu threshold (0..255)
  int64_t morph_radius = 2;       // structuring element radius in mask pixels
  double min_area_px = 64 * 64;   // minimum component area in level-0 pixels
};

class TissueMask {
 public:
  // Detects (or loads) the mask of `slide`. A slide without tissue gives an empty mask (and a warning).
  static TissueMask detect(const Slide& slide, const TissueOptions& options);
  // A mask given directly (tests): `mask` (CV_8U, non-zero = tissue) spans the level-0 size width0 × height0.
  TissueMask(cv::Mat mask, int64_t width0, int64_t height0);

  // Does the level-0 box [x0, x1) × [y0, y1) touch tissue?
  bool touches(int64_t x0, int64_t y0, int64_t x1, int64_t y1) const;
  bool empty() const { return tissue_pixels_ == 0; }
  double tissue_fraction() const;
  const cv::Mat& mask() const { return mask_; }  // CV_8U, 255 = tissue
  double scale_x() const { return sx_; }         // level-0 pixels per mask pixel
  double scale_y() const { return sy_; }

 private:
  cv::Mat mask_, integral_;
  double sx_ = 1, sy_ = 1;
  int64_t tissue_pixels_ = 0;
};

// The low-resolution RGB image of `slide` tissue detection and the overlay use (larger side <= max_side).
cv::Mat slide_thumbnail(const Slide& slide, int64_t max_side);

}  // namespace spvit::infer

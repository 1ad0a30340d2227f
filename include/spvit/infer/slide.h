// A whole-slide image (or a plain image) as a pyramid of levels that can be read region by region.
//
// Any format OpenSlide opens (SVS, NDPI, MRXS, generic tiled TIFF, ...) is read through OpenSlide; a PNG, JPEG or a
// TIFF OpenSlide does not recognise is read whole through OpenCV and presented as a one-level slide. Regions come
// back as 8-bit RGB cv::Mat (CV_8UC3, R first); OpenSlide's premultiplied ARGB is un-premultiplied onto white, and
// everything outside the image is white (glass), so a tile hanging over the slide edge reads as background.
#pragma once
#include <opencv2/core.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace spvit::infer {

struct SlideLevel {
  int64_t width = 0, height = 0;
  double downsample = 1.0;  // level-0 pixels per pixel of this level
};

class Slide {
 public:
  virtual ~Slide() = default;
  // Opens `path`; throws DataError naming the file when it is missing, not an image, or corrupt.
  static std::unique_ptr<Slide> open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<SlideLevel>& levels() const { return levels_; }
  const SlideLevel& level(int level) const;  // throws DataError naming the file for a level that does not exist
  int level_count() const { return static_cast<int>(levels_.size()); }
  double mpp_x() const { return mpp_x_; }  // micrometres per level-0 pixel; 0 when unknown
  double mpp_y() const { return mpp_y_; }
  // Where the resolution came from: "openslide.mpp-x", "TIFF XResolution" (generic and plain TIFFs, whose tags
  // OpenSlide 3.4 does not turn into mpp; only 0.02-50 um/px, so a 72/96/300 dpi placeholder is no resolution), or
  // "none".
  const std::string& mpp_source() const { return mpp_source_; }
  virtual std::string format() const = 0;  // "openslide:<vendor>" or "opencv"

  // The region [x, x + w) × [y, y + h) of `level`, in that level's pixel coordinates (it may extend past the edge:
  // the outside is white). Throws DataError naming the file when the level cannot be read.
  virtual cv::Mat read_region(int level, int64_t x, int64_t y, int64_t w, int64_t h) const = 0;

  // The level with the most pixels whose larger side is at most `max_side`, or the smallest level.
  int level_for_max_side(int64_t max_side) const;
  // The level closest to `mpp` micrometres per pixel without being coarser than it by more than 10%; throws
  // DataError when the slide has no mpp, naming the way out (a level).
  int level_for_mpp(double mpp) const;

 protected:
  std::string path_;
  std::vector<SlideLevel> levels_;
  double mpp_x_ = 0, mpp_y_ = 0;
  std::string mpp_source_ = "none";
  void set_mpp(std::pair<double, double> mpp, const char* source);  // ignored unless mpp.first > 0
};

// OpenSlide's ARGB (premultiplied alpha) pixels -> RGB on white. `argb` holds w*h pixels.
cv::Mat argb_to_rgb(const uint32_t* argb, int w, int h);

}  // namespace spvit::infer

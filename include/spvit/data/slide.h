// A whole-slide image (or a plain image) as a pyramid of levels that can be read region by region: the one slide
// reader of spvit, used by slide training (data.source: slides) and by `spvit infer` alike (docs/data.md).
//
// Any format OpenSlide opens (SVS, NDPI, MRXS, generic tiled TIFF, ...) is read through OpenSlide; a PNG, JPEG or a
// TIFF OpenSlide does not recognise is read whole through OpenCV and presented as a one-level slide. Regions come
// back as 8-bit RGB (R first, row-major, 3 bytes a pixel): OpenSlide's premultiplied ARGB is un-premultiplied onto
// white, and everything outside the image is white (glass), so a region hanging over the slide edge reads as
// background. Only builds with OpenCV and libtiff have slides (build_info: SPVIT_HAVE_INFER).
#pragma once
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace spvit::data {

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
  // The scanned area in level-0 pixels (x0, y0, x1, y1): openslide.bounds-x/-y/-width/-height where the format
  // has them (MIRAX .mrxs, some .ndpi), as QuPath uses them; the whole level 0 otherwise. Outside it is empty glass.
  const std::array<int64_t, 4>& bounds() const { return bounds_; }
  virtual std::string format() const = 0;  // "openslide:<vendor>" or "opencv"

  // The region [x, x + w) × [y, y + h) of `level`, in that level's pixel coordinates (it may extend past the edge:
  // the outside is white), written to `rgb` (w·h·3 bytes). Throws DataError naming the file when the level cannot be
  // read. Thread-safe.
  virtual void read_region_into(int level, int64_t x, int64_t y, int64_t w, int64_t h, uint8_t* rgb) const = 0;
  // The same as a uint8 tensor [h, w, 3].
  torch::Tensor read_region(int level, int64_t x, int64_t y, int64_t w, int64_t h) const;

  // The region [x, x + w) × [y, y + h) at `downsample` level-0 pixels per pixel (any value >= 1, not only a level's):
  // read from the coarsest level at least that fine and, when that level's downsample differs, reduced by area
  // averaging. Every output pixel is computed from its own absolute position, so a band or box read equals the same
  // part of a whole read, bit for bit (what sequence ranks reading their own parts rely on). uint8 [h, w, 3].
  torch::Tensor read_scaled(double downsample, int64_t x, int64_t y, int64_t w, int64_t h) const;

  // The level with the most pixels whose larger side is at most `max_side`, or the smallest level.
  int level_for_max_side(int64_t max_side) const;
  // The level closest to `mpp` micrometres per pixel without being coarser than it by more than 10%; throws
  // DataError when the slide has no mpp, naming the way out (a level).
  int level_for_mpp(double mpp) const;
  // Level-0 pixels per pixel at `mpp` micrometres per pixel: mpp / mpp_x, or the downsample of a level within
  // kMppTolerance of it (a "20x" scan may report 0.504 um/px). Throws DataError like level_for_mpp.
  double downsample_for_mpp(double mpp) const;
  static constexpr double kMppTolerance = 0.02;
  // The coarsest level whose downsample is at most `downsample` (within 1e-6): where read_scaled reads from.
  int level_for_downsample(double downsample) const;

 protected:
  std::string path_;
  std::vector<SlideLevel> levels_;
  double mpp_x_ = 0, mpp_y_ = 0;
  std::string mpp_source_ = "none";
  std::array<int64_t, 4> bounds_{};
  void set_mpp(std::pair<double, double> mpp, const char* source);  // ignored unless mpp.first > 0
  [[noreturn]] void no_resolution() const;
};

// OpenSlide's ARGB (premultiplied alpha) pixels -> RGB on white: `argb` holds w·h pixels, `rgb` w·h·3 bytes.
void argb_to_rgb(const uint32_t* argb, int64_t w, int64_t h, uint8_t* rgb);

}  // namespace spvit::data

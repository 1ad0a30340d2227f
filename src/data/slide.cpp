#include "spvit/data/slide.h"

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#define TIFF_DISABLE_DEPRECATED  // libtiff's deprecated int64 typedef would clash with OpenCV's
#include <tiffio.h>

#include "spvit/build_info.h"
#include "spvit/core/error.h"
#if SPVIT_HAVE_OPENSLIDE
#include <openslide.h>
#endif

namespace spvit::data {
namespace {

// Copies the in-image part of `image` (level coordinates origin x, y; size w × h) into `rgb`, white elsewhere.
void crop_on_white(const cv::Mat& image, int64_t x, int64_t y, int64_t w, int64_t h, uint8_t* rgb) {
  cv::Mat out(static_cast<int>(h), static_cast<int>(w), CV_8UC3, rgb);
  out.setTo(cv::Scalar(255, 255, 255));
  const int64_t x0 = std::max<int64_t>(x, 0), y0 = std::max<int64_t>(y, 0);
  const int64_t x1 = std::min<int64_t>(x + w, image.cols), y1 = std::min<int64_t>(y + h, image.rows);
  if (x1 > x0 && y1 > y0) {
    const cv::Rect src(static_cast<int>(x0), static_cast<int>(y0), static_cast<int>(x1 - x0), static_cast<int>(y1 - y0));
    image(src).copyTo(out(cv::Rect(static_cast<int>(x0 - x), static_cast<int>(y0 - y), src.width, src.height)));
  }
}

// Micrometres per pixel from a TIFF's first directory: XResolution / YResolution in pixels per ResolutionUnit
// (inch, the TIFF default, or centimetre). OpenSlide 3.4 reports no mpp for generic TIFFs, and plain TIFFs are read
// through OpenCV, so this is where their resolution comes from. {0, 0} when the file is not a TIFF, has no
// XResolution, or its unit is "none".
std::pair<double, double> tiff_tag_mpp(const std::string& path) {
  TIFF* t = nullptr;
  {
    // libtiff's handlers are process-wide: silence them (a non-TIFF file is not an error here) under a lock.
    static std::mutex handlers;
    std::lock_guard<std::mutex> lock(handlers);
    const TIFFErrorHandler errors = TIFFSetErrorHandler(nullptr), warnings = TIFFSetWarningHandler(nullptr);
    t = TIFFOpen(path.c_str(), "r");
    TIFFSetErrorHandler(errors);
    TIFFSetWarningHandler(warnings);
  }
  if (t == nullptr) return {0, 0};
  float x = 0, y = 0;
  uint16_t unit = RESUNIT_INCH;
  const bool has_x = TIFFGetField(t, TIFFTAG_XRESOLUTION, &x) == 1;
  if (TIFFGetField(t, TIFFTAG_YRESOLUTION, &y) != 1) y = x;
  TIFFGetFieldDefaulted(t, TIFFTAG_RESOLUTIONUNIT, &unit);
  TIFFClose(t);
  const double micrometres = unit == RESUNIT_INCH ? 25400.0 : unit == RESUNIT_CENTIMETER ? 10000.0 : 0.0;
  if (!has_x || !(x > 0) || micrometres == 0) return {0, 0};
  const double mpp_x = micrometres / x, mpp_y = micrometres / (y > 0 ? y : x);
  // Writers often leave a screen placeholder (72, 96, 300 dpi: 85-350 um/px, or 10 px/cm): not a microscope's.
  auto microscopic = [](double mpp) { return mpp >= 0.02 && mpp <= 50.0; };
  if (!microscopic(mpp_x) || !microscopic(mpp_y)) return {0, 0};
  return {mpp_x, mpp_y};
}

// A plain image read whole through OpenCV: one level.
class OpenCvSlide : public Slide {
 public:
  OpenCvSlide(const std::string& path, cv::Mat rgb) : rgb_(std::move(rgb)) {
    path_ = path;
    levels_.push_back({rgb_.cols, rgb_.rows, 1.0});
    bounds_ = {0, 0, rgb_.cols, rgb_.rows};
    set_mpp(tiff_tag_mpp(path), "TIFF XResolution");
  }
  std::string format() const override { return "opencv"; }
  void read_region_into(int lvl, int64_t x, int64_t y, int64_t w, int64_t h, uint8_t* rgb) const override {
    level(lvl);
    SPVIT_CHECK(w > 0 && h > 0, "empty region ", w, "x", h, " requested from '", path_, "'");
    crop_on_white(rgb_, x, y, w, h, rgb);
  }

 private:
  cv::Mat rgb_;
};

#if SPVIT_HAVE_OPENSLIDE
// OpenSlide 3.4 reads generic TIFFs (deflate, LZW, uncompressed) through libtiff's TIFFReadRGBATile, which in libtiff
// 4.5 (Debian bookworm) returns garbage — different on every read — for a level narrower or shorter than one tile.
// Such levels are the coarsest of a pyramid (left out: a slide has coarser levels than it needs) or a whole image
// smaller than a tile (read through OpenCV instead).
bool smaller_than_a_tile(openslide_t* osr, const std::string& vendor, int32_t level) {
  if (vendor != "generic-tiff") return false;
  auto prop = [&](const char* what) {
    const std::string name = "openslide.level[" + std::to_string(level) + "]." + what;
    const char* v = openslide_get_property_value(osr, name.c_str());
    return v ? std::atoll(v) : 0LL;
  };
  int64_t w = 0, h = 0;
  openslide_get_level_dimensions(osr, level, &w, &h);
  return w < prop("tile-width") || h < prop("tile-height");
}

class OpenSlideSlide : public Slide {
 public:
  OpenSlideSlide(const std::string& path, openslide_t* osr, std::string vendor) : osr_(osr), vendor_(std::move(vendor)) {
    path_ = path;
    const int32_t n = openslide_get_level_count(osr_);
    if (n <= 0) fail("it reports no levels");
    for (int32_t l = 0; l < n; ++l) {
      int64_t w = 0, h = 0;
      openslide_get_level_dimensions(osr_, l, &w, &h);
      const double ds = openslide_get_level_downsample(osr_, l);
      if (w <= 0 || h <= 0 || !(ds > 0)) fail("level " + std::to_string(l) + " has no valid dimensions");
      if (l > 0 && smaller_than_a_tile(osr_, vendor_, l)) break;  // the coarsest levels only: they are left out
      levels_.push_back({w, h, ds});
    }
    auto prop = [&](const char* name) {
      const char* v = openslide_get_property_value(osr_, name);
      return v ? std::atof(v) : 0.0;
    };
    const double mpp_x = prop(OPENSLIDE_PROPERTY_NAME_MPP_X), mpp_y = prop(OPENSLIDE_PROPERTY_NAME_MPP_Y);
    set_mpp({mpp_x, mpp_y > 0 ? mpp_y : mpp_x}, "openslide.mpp-x");
    if (!(mpp_x_ > 0)) set_mpp(tiff_tag_mpp(path), "TIFF XResolution");  // generic TIFFs: OpenSlide gives none
    bounds_ = {0, 0, levels_[0].width, levels_[0].height};
    if (openslide_get_property_value(osr_, OPENSLIDE_PROPERTY_NAME_BOUNDS_WIDTH) != nullptr) {
      const auto bx = static_cast<int64_t>(prop(OPENSLIDE_PROPERTY_NAME_BOUNDS_X));
      const auto by = static_cast<int64_t>(prop(OPENSLIDE_PROPERTY_NAME_BOUNDS_Y));
      const auto bw = static_cast<int64_t>(prop(OPENSLIDE_PROPERTY_NAME_BOUNDS_WIDTH));
      const auto bh = static_cast<int64_t>(prop(OPENSLIDE_PROPERTY_NAME_BOUNDS_HEIGHT));
      if (bw > 0 && bh > 0) bounds_ = {bx, by, bx + bw, by + bh};
    }
    if (const char* e = openslide_get_error(osr_)) fail(e);
  }
  ~OpenSlideSlide() override { openslide_close(osr_); }
  std::string format() const override { return "openslide:" + vendor_; }

  void read_region_into(int lvl, int64_t x, int64_t y, int64_t w, int64_t h, uint8_t* rgb) const override {
    const auto& L = level(lvl);
    SPVIT_CHECK(w > 0 && h > 0 && w * h < (int64_t{1} << 31), "region ", w, "x", h, " requested from '", path_,
                "' is empty or too large for one read");
    if (L.downsample == std::round(L.downsample)) {
      read_direct(lvl, x, y, w, h, rgb);
      return;
    }
    // A level whose downsample is not an integer (4.0003 on many scans): OpenSlide takes level-0 coordinates and
    // draws the level's tiles at the fractional offset x0 / downsample - x, interpolating by an amount that depends on
    // where the read starts. Reading fixed blocks on the level's own grid and cropping them makes every read of a
    // pixel the same, so a band or box read equals the same part of a whole read.
    constexpr int64_t B = 512;
    std::vector<uint8_t> block(static_cast<size_t>(B * B * 3));
    for (int64_t by = floor_div(y, B); by * B < y + h; ++by) {
      for (int64_t bx = floor_div(x, B); bx * B < x + w; ++bx) {
        read_direct(lvl, bx * B, by * B, B, B, block.data());
        const int64_t x0 = std::max(x, bx * B), x1 = std::min(x + w, (bx + 1) * B);
        const int64_t y0 = std::max(y, by * B), y1 = std::min(y + h, (by + 1) * B);
        for (int64_t r = y0; r < y1; ++r) {
          std::memcpy(rgb + ((r - y) * w + (x0 - x)) * 3, block.data() + ((r - by * B) * B + (x0 - bx * B)) * 3,
                      static_cast<size_t>((x1 - x0) * 3));
        }
      }
    }
  }

 private:
  static int64_t floor_div(int64_t v, int64_t d) { return v >= 0 ? v / d : -((-v + d - 1) / d); }
  // One openslide_read_region of level coordinates (x, y), w × h, as RGB on white.
  void read_direct(int lvl, int64_t x, int64_t y, int64_t w, int64_t h, uint8_t* rgb) const {
    const auto& L = levels_[static_cast<size_t>(lvl)];
    std::vector<uint32_t> argb(static_cast<size_t>(w * h));
    const int64_t x0 = static_cast<int64_t>(std::llround(static_cast<double>(x) * L.downsample));
    const int64_t y0 = static_cast<int64_t>(std::llround(static_cast<double>(y) * L.downsample));
    openslide_read_region(osr_, argb.data(), x0, y0, lvl, w, h);
    if (const char* e = openslide_get_error(osr_)) {
      SPVIT_THROW(DataError, "cannot read level ", lvl, " of slide '", path_, "' (region x=", x, " y=", y, " ", w, "x",
                  h, "): ", e);
    }
    argb_to_rgb(argb.data(), w, h, rgb);
  }
  [[noreturn]] void fail(const std::string& why) {
    openslide_close(osr_);
    SPVIT_THROW(DataError, "cannot open slide '", path_, "' with OpenSlide: ", why);
  }
  openslide_t* osr_;
  std::string vendor_;
};
#endif

}  // namespace

void argb_to_rgb(const uint32_t* argb, int64_t w, int64_t h, uint8_t* rgb) {
  const int64_t n = w * h;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t p = argb[i];
    const uint32_t a = p >> 24;
    const uint32_t c[3] = {(p >> 16) & 0xff, (p >> 8) & 0xff, p & 0xff};
    for (int k = 0; k < 3; ++k) {
      // Premultiplied: colour = c + (255 - a) for compositing over white; a == 0 gives white.
      const uint32_t v = a == 255 ? c[k] : c[k] + (255 - a);
      rgb[3 * i + k] = static_cast<uint8_t>(v > 255 ? 255 : v);
    }
  }
}

torch::Tensor Slide::read_region(int lvl, int64_t x, int64_t y, int64_t w, int64_t h) const {
  SPVIT_CHECK(w > 0 && h > 0, "empty region ", w, "x", h, " requested from '", path_, "'");
  auto out = torch::empty({h, w, 3}, torch::kUInt8);
  read_region_into(lvl, x, y, w, h, out.data_ptr<uint8_t>());
  return out;
}

std::unique_ptr<Slide> Slide::open(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    SPVIT_THROW(DataError, "slide '", path, "' does not exist or is not a file");
  }
#if SPVIT_HAVE_OPENSLIDE
  if (const char* vendor = openslide_detect_vendor(path.c_str())) {
    openslide_t* osr = openslide_open(path.c_str());
    if (osr == nullptr) SPVIT_THROW(DataError, "cannot open slide '", path, "' with OpenSlide (format ", vendor, ")");
    if (const char* e = openslide_get_error(osr)) {
      const std::string why = e;
      openslide_close(osr);
      SPVIT_THROW(DataError, "cannot open slide '", path, "' with OpenSlide: ", why);
    }
    if (!smaller_than_a_tile(osr, vendor, 0)) return std::make_unique<OpenSlideSlide>(path, osr, vendor);
    openslide_close(osr);  // an image smaller than one tile: OpenCV reads its first directory
  }
#endif
  cv::Mat bgr;
  try {
    bgr = cv::imread(path, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    SPVIT_THROW(DataError, "cannot decode slide '", path, "': ", e.what());
  }
  if (bgr.empty()) {
    SPVIT_THROW(DataError, "cannot read slide '", path, "': neither ",
                SPVIT_HAVE_OPENSLIDE ? "OpenSlide nor " : "", "OpenCV can decode it (corrupt or unsupported format)");
  }
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return std::make_unique<OpenCvSlide>(path, std::move(rgb));
}

const SlideLevel& Slide::level(int level) const {
  if (level < 0 || level >= level_count()) {
    SPVIT_THROW(DataError, "slide '", path_, "' has no level ", level, " (it has ", level_count(), " level",
                level_count() == 1 ? "" : "s", ": 0..", level_count() - 1, ")");
  }
  return levels_[static_cast<size_t>(level)];
}

int Slide::level_for_max_side(int64_t max_side) const {
  for (int l = 0; l < level_count(); ++l) {
    if (std::max(levels_[l].width, levels_[l].height) <= max_side) return l;
  }
  return level_count() - 1;
}

void Slide::set_mpp(std::pair<double, double> mpp, const char* source) {
  if (!(mpp.first > 0)) return;
  mpp_x_ = mpp.first;
  mpp_y_ = mpp.second > 0 ? mpp.second : mpp.first;
  mpp_source_ = source;
}

void Slide::no_resolution() const {
  SPVIT_THROW(DataError, "slide '", path_, "' has no resolution (no openslide.mpp-x property, no TIFF XResolution "
              "tag between 0.02 and 50 um/px): choose a level instead (data.level for training, --level for spvit "
              "infer)");
}

int Slide::level_for_mpp(double mpp) const {
  if (!(mpp_x_ > 0)) no_resolution();
  int best = 0;
  for (int l = 0; l < level_count(); ++l) {
    if (mpp_x_ * levels_[l].downsample <= mpp * 1.1) best = l;
  }
  return best;
}

double Slide::downsample_for_mpp(double mpp) const {
  if (!(mpp_x_ > 0)) no_resolution();
  const double ds = mpp / mpp_x_;
  // Scanners report 0.504 or 0.2527 um/px for "20x" and "40x": a resolution within 2% of a level's is that level
  // (read as it is, not resampled by a factor like 1.008), and of level 0 when only a little finer.
  for (const auto& level : levels_) {
    if (std::abs(ds / level.downsample - 1.0) <= kMppTolerance) return level.downsample;
  }
  return ds;
}

int Slide::level_for_downsample(double downsample) const {
  int best = 0;
  for (int l = 0; l < level_count(); ++l) {
    if (levels_[l].downsample <= downsample * (1 + 1e-6)) best = l;
  }
  return best;
}

}  // namespace spvit::data

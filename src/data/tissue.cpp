#include "spvit/data/tissue.h"

#include <filesystem>
#include <functional>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/data/hash.h"

namespace fs = std::filesystem;

namespace spvit::data {
namespace {

cv::Mat as_mat(const torch::Tensor& t) {  // a view of a contiguous uint8 [h, w] or [h, w, 3] tensor
  const int type = t.dim() == 3 ? CV_8UC3 : CV_8U;
  return cv::Mat(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), type, t.data_ptr<uint8_t>());
}

torch::Tensor to_tensor(const cv::Mat& m) {  // CV_8U -> uint8 [h, w] copy
  auto t = torch::empty({m.rows, m.cols}, torch::kUInt8);
  cv::Mat view = as_mat(t);
  m.copyTo(view);
  return t;
}

// The auto detector on a thumbnail: saturation (Otsu, bounded below) or darkness, close/open, small parts dropped.
cv::Mat detect_on_thumbnail(const cv::Mat& thumb, const TissueOptions& o, double min_area_thumb_px) {
  cv::Mat hsv, channels[3];
  cv::cvtColor(thumb, hsv, cv::COLOR_RGB2HSV);
  cv::split(hsv, channels);
  const cv::Mat& sat = channels[1];
  cv::Mat otsu_mask, mask;
  const double otsu = cv::threshold(sat, otsu_mask, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
  // Otsu splits glass from the dominant tissue; pale tissue sits below it, so the pale presets cap the threshold.
  const double t = o.min_darkness > 0 ? o.min_saturation : std::max(otsu, o.min_saturation);
  cv::threshold(sat, mask, t, 255, cv::THRESH_BINARY);  // saturation > t
  if (o.min_darkness > 0) {
    cv::Mat gray, dark;
    cv::cvtColor(thumb, gray, cv::COLOR_RGB2GRAY);
    cv::threshold(gray, dark, 255.0 - o.min_darkness, 255, cv::THRESH_BINARY_INV);  // gray <= 255 - min_darkness
    cv::bitwise_or(mask, dark, mask);
  }
  const int r = static_cast<int>(o.morph_radius);
  if (r > 0) {
    const cv::Mat se = cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * r + 1, 2 * r + 1));
    cv::morphologyEx(mask, mask, cv::MORPH_CLOSE, se);
    cv::morphologyEx(mask, mask, cv::MORPH_OPEN, se);
  }
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
  std::vector<uint8_t> keep(static_cast<size_t>(n), 0);
  for (int i = 1; i < n; ++i) keep[static_cast<size_t>(i)] = stats.at<int>(i, cv::CC_STAT_AREA) >= min_area_thumb_px;
  for (int y = 0; y < mask.rows; ++y) {
    auto* m = mask.ptr<uint8_t>(y);
    const auto* l = labels.ptr<int>(y);
    for (int x = 0; x < mask.cols; ++x) m[x] = keep[static_cast<size_t>(l[x])] ? 1 : 0;
  }
  return mask;
}

}  // namespace

TissueOptions TissueOptions::preset(const std::string& name) {
  TissueOptions o;
  if (name == "standard") return o;
  if (name == "pale") {
    o.min_saturation = 8;
    o.min_darkness = 18;
    o.morph_radius = 3;
    return o;
  }
  if (name == "ihc") {
    o.min_saturation = 6;
    o.min_darkness = 14;
    o.morph_radius = 3;
    return o;
  }
  std::string known;
  for (const auto& p : preset_names()) known += (known.empty() ? "" : ", ") + p;
  SPVIT_THROW(ConfigError, "unknown tissue preset '", name, "' (known: ", known, ")");
}

const std::vector<std::string>& TissueOptions::preset_names() {
  static const std::vector<std::string> names{"standard", "pale", "ihc"};
  return names;
}

std::string TissueOptions::key() const {
  std::ostringstream k;
  k << mode << ' ' << max_side << ' ' << min_saturation << ' ' << min_darkness << ' ' << morph_radius << ' '
    << min_area_px << ' ' << min_area_um2;
  return k.str();
}

torch::Tensor slide_thumbnail(const Slide& slide, int64_t max_side) {
  // The smallest level that is still at least max_side (so a resize only shrinks), or level 0.
  int lvl = 0;
  for (int l = 0; l < slide.level_count(); ++l) {
    const auto& L = slide.level(l);
    if (std::max(L.width, L.height) >= max_side) lvl = l;
  }
  const auto& L = slide.level(lvl);
  const double f = std::min(1.0, static_cast<double>(max_side) / static_cast<double>(std::max(L.width, L.height)));
  const int out_w = std::max(1, static_cast<int>(std::lround(L.width * f)));
  const int out_h = std::max(1, static_cast<int>(std::lround(L.height * f)));
  if (f == 1.0) return slide.read_region(lvl, 0, 0, L.width, L.height);
  // Read in strips (a single-level slide may be far too large to read whole) and shrink each strip.
  auto out = torch::full({out_h, out_w, 3}, 255, torch::kUInt8);
  cv::Mat out_mat = as_mat(out);
  const int64_t strip = std::max<int64_t>(1, std::min<int64_t>(L.height, (int64_t{16} << 20) / (3 * L.width)));
  for (int64_t y0 = 0; y0 < L.height; y0 += strip) {
    const int64_t y1 = std::min(L.height, y0 + strip);
    const int o0 = static_cast<int>(std::lround(y0 * f)), o1 = static_cast<int>(std::lround(y1 * f));
    if (o1 <= o0) continue;
    const torch::Tensor part = slide.read_region(lvl, 0, y0, L.width, y1 - y0);
    cv::Mat small;
    cv::resize(as_mat(part), small, cv::Size(out_w, o1 - o0), 0, 0, cv::INTER_AREA);
    small.copyTo(out_mat.rowRange(o0, o1));
  }
  return out;
}

TissueMask::TissueMask(torch::Tensor mask, int64_t width0, int64_t height0) {
  SPVIT_CHECK(mask.defined() && mask.dim() == 2 && mask.numel() > 0, "tissue mask must be a non-empty 2-D image");
  mask_ = mask.ne(0).to(torch::kUInt8).contiguous();
  const int64_t h = mask_.size(0), w = mask_.size(1);
  sx_ = static_cast<double>(width0) / static_cast<double>(w);
  sy_ = static_cast<double>(height0) / static_cast<double>(h);
  integral_.assign(static_cast<size_t>((h + 1) * (w + 1)), 0);
  const uint8_t* m = mask_.data_ptr<uint8_t>();
  for (int64_t y = 0; y < h; ++y) {
    int64_t row = 0;
    for (int64_t x = 0; x < w; ++x) {
      row += m[y * w + x];
      integral_[static_cast<size_t>((y + 1) * (w + 1) + x + 1)] = integral_[static_cast<size_t>(y * (w + 1) + x + 1)] + row;
    }
  }
  tissue_pixels_ = integral_.back();
}

TissueMask TissueMask::detect(const Slide& slide, const TissueOptions& o) {
  const auto& L0 = slide.level(0);
  if (o.mode == "none") return TissueMask(torch::ones({1, 1}, torch::kUInt8), L0.width, L0.height);
  if (o.mode != "auto") {
    cv::Mat user;
    try {
      user = cv::imread(o.mode, cv::IMREAD_GRAYSCALE);
    } catch (const cv::Exception& e) {
      SPVIT_THROW(DataError, "cannot read tissue mask '", o.mode, "': ", e.what());
    }
    if (user.empty()) SPVIT_THROW(DataError, "cannot read tissue mask '", o.mode, "' (missing or not an image)");
    TissueMask m(to_tensor(user), L0.width, L0.height);
    if (m.empty()) log::warn("tissue mask '{}' is empty: no tissue in slide '{}'", o.mode, slide.path());
    return m;
  }
  const torch::Tensor thumb = slide_thumbnail(slide, o.max_side);
  // The minimum component area in thumbnail pixels.
  const double px_area = (static_cast<double>(L0.width) / static_cast<double>(thumb.size(1))) *
                         (static_cast<double>(L0.height) / static_cast<double>(thumb.size(0)));
  const double min_area_l0 =
      o.min_area_um2 > 0 && slide.mpp_x() > 0 ? o.min_area_um2 / (slide.mpp_x() * slide.mpp_y()) : o.min_area_px;
  const cv::Mat mask = detect_on_thumbnail(as_mat(thumb), o, min_area_l0 / px_area);
  TissueMask result(to_tensor(mask), L0.width, L0.height);
  if (result.empty()) log::warn("no tissue found in slide '{}'", slide.path());
  return result;
}

TissueMask TissueMask::detect_cached(const Slide& slide, const TissueOptions& o, const std::string& cache_dir) {
  if (cache_dir.empty() || o.mode == "none") return detect(slide, o);
  std::error_code ec;
  const auto size = fs::file_size(slide.path(), ec);
  const auto mtime = fs::last_write_time(slide.path(), ec).time_since_epoch().count();
  const uint64_t key = hash_key({std::hash<std::string>{}(fs::absolute(slide.path()).string()), size,
                                 static_cast<uint64_t>(mtime), std::hash<std::string>{}(o.key())});
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx", static_cast<unsigned long long>(key));
  const std::string path =
      (fs::path(cache_dir) / (fs::path(slide.path()).stem().string() + "-tissue-" + name + ".png")).string();
  const auto& L0 = slide.level(0);
  if (fs::exists(path, ec)) {
    cv::Mat cached;
    try {
      cached = cv::imread(path, cv::IMREAD_GRAYSCALE);
    } catch (const cv::Exception&) {
    }
    if (!cached.empty()) return TissueMask(to_tensor(cached), L0.width, L0.height);
    log::warn("tissue cache '{}' is unreadable: detecting again", path);
  }
  TissueMask mask = detect(slide, o);
  try {
    fs::create_directories(cache_dir);
    std::vector<uint8_t> png;
    cv::Mat scaled = as_mat(mask.mask()) * 255;
    if (!cv::imencode(".png", scaled, png)) SPVIT_THROW(WriteError, "PNG encoding failed");
    write_bytes_atomically(path, png.data(), png.size());
  } catch (const std::exception& e) {
    log::warn("cannot cache the tissue mask of '{}' in '{}' ({}): it will be detected again next time", slide.path(),
              cache_dir, e.what());
  }
  return mask;
}

int64_t TissueMask::count(int64_t x0, int64_t y0, int64_t x1, int64_t y1, int64_t* cells) const {
  const int64_t h = mask_.size(0), w = mask_.size(1);
  auto clampi = [](int64_t v, int64_t hi) { return std::min<int64_t>(std::max<int64_t>(v, 0), hi); };
  const int64_t mx0 = clampi(static_cast<int64_t>(std::floor(static_cast<double>(x0) / sx_)), w);
  const int64_t my0 = clampi(static_cast<int64_t>(std::floor(static_cast<double>(y0) / sy_)), h);
  const int64_t mx1 = clampi(static_cast<int64_t>(std::ceil(static_cast<double>(x1) / sx_)), w);
  const int64_t my1 = clampi(static_cast<int64_t>(std::ceil(static_cast<double>(y1) / sy_)), h);
  if (cells) {  // the whole box in mask cells, off-slide parts included (they hold no tissue)
    const double cx = std::ceil(static_cast<double>(x1) / sx_) - std::floor(static_cast<double>(x0) / sx_);
    const double cy = std::ceil(static_cast<double>(y1) / sy_) - std::floor(static_cast<double>(y0) / sy_);
    *cells = static_cast<int64_t>(std::max(0.0, cx) * std::max(0.0, cy));
  }
  if (mx1 <= mx0 || my1 <= my0) return 0;
  auto at = [&](int64_t y, int64_t x) { return integral_[static_cast<size_t>(y * (w + 1) + x)]; };
  return at(my1, mx1) - at(my0, mx1) - at(my1, mx0) + at(my0, mx0);
}

bool TissueMask::touches(int64_t x0, int64_t y0, int64_t x1, int64_t y1) const {
  return count(x0, y0, x1, y1, nullptr) > 0;
}

double TissueMask::fraction(int64_t x0, int64_t y0, int64_t x1, int64_t y1) const {
  int64_t cells = 0;
  const int64_t n = count(x0, y0, x1, y1, &cells);
  return cells > 0 ? static_cast<double>(n) / static_cast<double>(cells) : 0.0;
}

double TissueMask::tissue_fraction() const {
  return static_cast<double>(tissue_pixels_) / static_cast<double>(mask_.numel());
}

}  // namespace spvit::data

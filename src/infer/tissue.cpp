#include "spvit/infer/tissue.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "spvit/core/error.h"
#include "spvit/core/logging.h"

namespace spvit::infer {

cv::Mat slide_thumbnail(const Slide& slide, int64_t max_side) {
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
  cv::Mat out(out_h, out_w, CV_8UC3, cv::Scalar(255, 255, 255));
  const int64_t strip = std::max<int64_t>(1, std::min<int64_t>(L.height, (int64_t{16} << 20) / (3 * L.width)));
  for (int64_t y0 = 0; y0 < L.height; y0 += strip) {
    const int64_t y1 = std::min(L.height, y0 + strip);
    const int o0 = static_cast<int>(std::lround(y0 * f)), o1 = static_cast<int>(std::lround(y1 * f));
    if (o1 <= o0) continue;
    cv::Mat part = slide.read_region(lvl, 0, y0, L.width, y1 - y0), small;
    cv::resize(part, small, cv::Size(out_w, o1 - o0), 0, 0, cv::INTER_AREA);
    small.copyTo(out.rowRange(o0, o1));
  }
  return out;
}

TissueMask::TissueMask(cv::Mat mask, int64_t width0, int64_t height0) : mask_(std::move(mask)) {
  SPVIT_CHECK(mask_.type() == CV_8U && !mask_.empty(), "tissue mask must be a non-empty 8-bit image");
  sx_ = static_cast<double>(width0) / mask_.cols;
  sy_ = static_cast<double>(height0) / mask_.rows;
  cv::Mat binary = mask_ > 0;
  mask_ = binary;
  tissue_pixels_ = cv::countNonZero(mask_);
  cv::integral(mask_ / 255, integral_, CV_32S);
}

TissueMask TissueMask::detect(const Slide& slide, const TissueOptions& o) {
  const auto& L0 = slide.level(0);
  if (o.mode == "none") return TissueMask(cv::Mat(1, 1, CV_8U, cv::Scalar(255)), L0.width, L0.height);
  if (o.mode != "auto") {
    cv::Mat user = cv::imread(o.mode, cv::IMREAD_GRAYSCALE);
    if (user.empty()) SPVIT_THROW(DataError, "cannot read tissue mask '", o.mode, "' (missing or not an image)");
    TissueMask m(user, L0.width, L0.height);
    if (m.empty()) log::warn("tissue mask '{}' is empty: no tile will be run", o.mode);
    return m;
  }
  const cv::Mat thumb = slide_thumbnail(slide, o.max_side);
  cv::Mat hsv, channels[3];
  cv::cvtColor(thumb, hsv, cv::COLOR_RGB2HSV);
  cv::split(hsv, channels);
  const cv::Mat& sat = channels[1];
  cv::Mat otsu_mask;
  const double otsu = cv::threshold(sat, otsu_mask, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
  cv::Mat mask;
  cv::threshold(sat, mask, std::max(otsu, o.min_saturation), 255, cv::THRESH_BINARY);
  const int r = static_cast<int>(o.morph_radius);
  if (r > 0) {
    const cv::Mat se = cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * r + 1, 2 * r + 1));
    cv::morphologyEx(mask, mask, cv::MORPH_CLOSE, se);
    cv::morphologyEx(mask, mask, cv::MORPH_OPEN, se);
  }
  // Components smaller than the minimum area (converted to mask pixels) are dropped.
  const double px_area = (static_cast<double>(L0.width) / thumb.cols) * (static_cast<double>(L0.height) / thumb.rows);
  const double min_area = o.min_area_px / px_area;
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
  std::vector<uint8_t> keep(static_cast<size_t>(n), 0);
  for (int i = 1; i < n; ++i) keep[static_cast<size_t>(i)] = stats.at<int>(i, cv::CC_STAT_AREA) >= min_area;
  for (int y = 0; y < mask.rows; ++y) {
    auto* m = mask.ptr<uint8_t>(y);
    const auto* l = labels.ptr<int>(y);
    for (int x = 0; x < mask.cols; ++x) m[x] = keep[static_cast<size_t>(l[x])] ? 255 : 0;
  }
  TissueMask result(mask, L0.width, L0.height);
  if (result.empty()) log::warn("no tissue found in slide '{}': the label mask will be all background", slide.path());
  return result;
}

bool TissueMask::touches(int64_t x0, int64_t y0, int64_t x1, int64_t y1) const {
  auto clampi = [](int64_t v, int hi) { return static_cast<int>(std::min<int64_t>(std::max<int64_t>(v, 0), hi)); };
  const int mx0 = clampi(static_cast<int64_t>(std::floor(x0 / sx_)), mask_.cols);
  const int my0 = clampi(static_cast<int64_t>(std::floor(y0 / sy_)), mask_.rows);
  const int mx1 = clampi(static_cast<int64_t>(std::ceil(x1 / sx_)), mask_.cols);
  const int my1 = clampi(static_cast<int64_t>(std::ceil(y1 / sy_)), mask_.rows);
  if (mx1 <= mx0 || my1 <= my0) return false;
  const int s = integral_.at<int>(my1, mx1) - integral_.at<int>(my0, mx1) - integral_.at<int>(my1, mx0) +
                integral_.at<int>(my0, mx0);
  return s > 0;
}

double TissueMask::tissue_fraction() const {
  return static_cast<double>(tissue_pixels_) / (static_cast<double>(mask_.rows) * mask_.cols);
}

}  // namespace spvit::infer

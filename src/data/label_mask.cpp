// Label-mask annotations (label_mask.h).
#include "spvit/data/label_mask.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "spvit/core/error.h"
#include "spvit/data/slide.h"

namespace spvit::data {
namespace {

constexpr int64_t kChunkValues = int64_t{1} << 24;  // mask values read at once when labelling a grid

std::string lower_extension(const std::string& path) {
  auto ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

// The whole mask through OpenCV, as it is stored (no conversion): one 8-bit grey channel, or grey RGB(A) pixels.
torch::Tensor read_whole(const std::string& path) {
  const cv::Mat m = cv::imread(path, cv::IMREAD_UNCHANGED);
  if (m.empty()) SPVIT_THROW(DataError, "cannot read label mask '", path, "' (not an image OpenCV can decode)");
  if (m.depth() != CV_8U) {
    SPVIT_THROW(DataError, "label mask '", path, "' has ", 8 * m.elemSize1(), "-bit pixels: label masks must be 8-bit "
                "greyscale, one value per class");
  }
  cv::Mat grey;
  if (m.channels() == 1) {
    grey = m;
  } else {
    std::vector<cv::Mat> ch;
    cv::split(m, ch);
    const bool equal = cv::countNonZero(ch[0] != ch[1]) == 0 && cv::countNonZero(ch[1] != ch[2]) == 0;
    if (!equal) {
      SPVIT_THROW(DataError, "label mask '", path, "' has colour pixels (a palette or RGB image): label masks must be "
                  "8-bit greyscale, one value per class (convert the palette indices to grey values)");
    }
    grey = ch[0];
  }
  auto out = torch::empty({grey.rows, grey.cols}, torch::kUInt8);
  grey.copyTo(cv::Mat(grey.rows, grey.cols, CV_8U, out.data_ptr<uint8_t>()));
  return out;
}

// Does a mask of `mask` pixels cover `slide` pixels at `ds` (the slide's size divided by ds, rounded either way)?
bool covers(int64_t mask, int64_t slide, double ds) {
  const double want = static_cast<double>(slide) / ds;
  return static_cast<double>(mask) >= std::floor(want) - 1e-9 && static_cast<double>(mask) <= std::ceil(want) + 1e-9;
}

}  // namespace

bool is_label_mask_path(const std::string& path) {
  const auto ext = lower_extension(path);
  return ext == ".png" || ext == ".tif" || ext == ".tiff";
}

LabelMask::LabelMask(const std::string& path, int64_t slide_width, int64_t slide_height, double downsample)
    : path_(path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) SPVIT_THROW(DataError, "label mask '", path, "' does not exist");
  if (lower_extension(path) != ".png") {
    auto slide = Slide::open(path);  // DataError naming the file when corrupt
    if (slide->format() != "opencv") pyramid_ = std::move(slide);
  }
  if (pyramid_) {
    width_ = pyramid_->level(0).width;
    height_ = pyramid_->level(0).height;
  } else {
    whole_ = read_whole(path);
    height_ = whole_.size(0);
    width_ = whole_.size(1);
  }
  const std::string sizes = std::to_string(width_) + "x" + std::to_string(height_) + " (WxH) and the slide's level 0 " +
                            std::to_string(slide_width) + "x" + std::to_string(slide_height);
  if (downsample > 0) {
    if (!covers(width_, slide_width, downsample) || !covers(height_, slide_height, downsample)) {
      SPVIT_THROW(DataError, "label mask '", path, "' is the wrong size for data.mask_downsample = ", downsample,
                  ": mask ", sizes, " (expected the slide's size divided by ", downsample, ")");
    }
    ds_ = downsample;
    return;
  }
  // From the sizes: the integer downsample both sides agree on (masks are saved at 1/2^k or 1/n of a slide, the
  // division rounded either way), else the width ratio when the height agrees with it.
  const double ratio = static_cast<double>(slide_width) / static_cast<double>(width_);
  const double whole = std::max(1.0, std::round(ratio));
  if (covers(width_, slide_width, whole) && covers(height_, slide_height, whole)) {
    ds_ = whole;
  } else if (covers(height_, slide_height, ratio)) {
    ds_ = ratio;
  } else {
    SPVIT_THROW(DataError, "label mask '", path, "' does not cover its slide at any one downsample: mask ", sizes,
                "; state data.mask_downsample (level-0 pixels per mask pixel)");
  }
}

LabelMask::~LabelMask() = default;

std::array<int64_t, 256> LabelMask::value_labels(const ClassMap& classes, int64_t background) {
  std::array<int64_t, 256> table;
  for (int v = 0; v < 256; ++v) {
    const auto it = classes.ids.find(std::to_string(v));
    table[static_cast<size_t>(v)] = it != classes.ids.end() ? it->second : v == 0 ? background : kNoClass;
  }
  return table;
}

torch::Tensor LabelMask::values(int64_t x0, int64_t y0, int64_t x1, int64_t y1) const {
  if (whole_.defined()) return whole_.slice(0, y0, y1).slice(1, x0, x1);
  const auto rgb = pyramid_->read_region(0, x0, y0, x1 - x0, y1 - y0);
  const auto r = rgb.select(2, 0);
  if (!r.eq(rgb.select(2, 1)).all().item<bool>() || !r.eq(rgb.select(2, 2)).all().item<bool>()) {
    SPVIT_THROW(DataError, "label mask '", path_, "' has colour pixels near (", x0, ", ", y0, "): label masks must be "
                "8-bit greyscale, one value per class");
  }
  return r.contiguous();
}

torch::Tensor LabelMask::labels(const RasterGrid& grid, const ClassMap& classes, int64_t background) const {
  auto out = torch::full({grid.height, grid.width}, background, torch::kLong);
  if (grid.height == 0 || grid.width == 0) return out;
  const auto table = value_labels(classes, background);
  // The mask pixel under each centre (-1 off the mask); centres increase, so these are non-decreasing.
  auto index_of = [&](double centre, int64_t size) {
    const auto k = static_cast<int64_t>(std::floor(centre / ds_));
    return k >= 0 && k < size ? k : -1;
  };
  std::vector<int64_t> mi(static_cast<size_t>(grid.height)), mj(static_cast<size_t>(grid.width));
  for (int64_t i = 0; i < grid.height; ++i) mi[static_cast<size_t>(i)] = index_of(grid.centre_y(i), height_);
  for (int64_t j = 0; j < grid.width; ++j) mj[static_cast<size_t>(j)] = index_of(grid.centre_x(j), width_);
  int64_t c0 = -1, c1 = -1;
  for (int64_t v : mj) {
    if (v < 0) continue;
    if (c0 < 0) c0 = v;
    c1 = v + 1;
  }
  if (c0 < 0) return out;
  auto* o = out.data_ptr<int64_t>();
  // Output rows in chunks whose mask rows hold about kChunkValues values.
  const double mask_rows_per_row = std::max(1.0, grid.downsample / ds_);
  const auto chunk = std::max<int64_t>(
      1, static_cast<int64_t>(static_cast<double>(kChunkValues) / static_cast<double>(c1 - c0) / mask_rows_per_row));
  for (int64_t i0 = 0; i0 < grid.height; i0 += chunk) {
    const int64_t i1 = std::min(grid.height, i0 + chunk);
    int64_t r0 = -1, r1 = -1;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t v = mi[static_cast<size_t>(i)];
      if (v < 0) continue;
      if (r0 < 0) r0 = v;
      r1 = v + 1;
    }
    if (r0 < 0) continue;
    const auto block = values(c0, r0, c1, r1);
    const auto* b = block.data_ptr<uint8_t>();
    const int64_t stride = block.stride(0);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t r = mi[static_cast<size_t>(i)];
      if (r < 0) continue;
      for (int64_t j = 0; j < grid.width; ++j) {
        const int64_t c = mj[static_cast<size_t>(j)];
        if (c < 0) continue;
        const uint8_t value = b[(r - r0) * stride + (c - c0)];
        const int64_t label = table[value];
        if (label == kNoClass) {
          std::string known;
          for (const auto& [name, id] : classes.ids) known += (known.empty() ? "'" : ", '") + name + "'";
          SPVIT_THROW(DataError, "label mask '", path_, "' has value ", static_cast<int>(value), " at mask pixel (", c,
                      ", ", r, "), which data.classes does not name (known: ", known.empty() ? "none" : known,
                      "); map it, e.g. data.classes: {\"", static_cast<int>(value), "\": 1} or \"",
                      static_cast<int>(value), "\": ignore");
        }
        o[i * grid.width + j] = label;
      }
    }
  }
  return out;
}

std::pair<torch::Tensor, double> LabelMask::overview(int64_t max_side) const {
  if (whole_.defined()) {
    const int64_t f = std::max<int64_t>(1, (std::max(width_, height_) + max_side - 1) / max_side);
    return {whole_.slice(0, 0, height_, f).slice(1, 0, width_, f).contiguous(), ds_ * static_cast<double>(f)};
  }
  const int level = pyramid_->level_for_max_side(max_side);
  const auto& l = pyramid_->level(level);
  const auto rgb = pyramid_->read_region(level, 0, 0, l.width, l.height);
  return {rgb.select(2, 0).contiguous(), ds_ * l.downsample};
}

}  // namespace spvit::data

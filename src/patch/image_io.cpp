// Image files, layout drawings and the synthetic tissue generator.
#include "spvit/patch/image_io.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <fstream>
#include <limits>

#include "spvit/build_info.h"
#include "spvit/core/error.h"
#include "spvit/patch/banding.h"
#include "spvit/patch/scorer.h"  // check_image

#if SPVIT_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace spvit::patch {

namespace {

#if SPVIT_HAVE_OPENCV
cv::Mat as_mat(const torch::Tensor& image) {  // [H, W, C] uint8 contiguous CPU -> a Mat sharing its memory
  return cv::Mat(static_cast<int>(image.size(0)), static_cast<int>(image.size(1)),
                 CV_8UC(static_cast<int>(image.size(2))), image.data_ptr<uint8_t>());
}
#else
[[noreturn]] void no_opencv(const char* what) {
  SPVIT_THROW(Error, what, " needs OpenCV, which this build does not have (configure with -DSPVIT_WITH_OPENCV=ON)");
}
#endif

// A smooth random field: bilinear (corner-aligned) interpolation of a coarse [g, g] noise grid onto the given rows
// of a side×side image. `columns` is the coarse grid already interpolated along x ([g, side]), so rows cost two
// gathers and a lerp, and any band size gives the same pixels.
torch::Tensor smooth_rows(const torch::Tensor& columns, int64_t side, const torch::Tensor& rows) {
  const int64_t g = columns.size(0);
  const auto y = rows.to(torch::kFloat64) * (static_cast<double>(g - 1) / static_cast<double>(std::max<int64_t>(1, side - 1)));
  const auto i0 = y.floor().to(torch::kLong).clamp_(0, g - 2);
  const auto w = (y - i0.to(torch::kFloat64)).to(torch::kFloat32).unsqueeze(1);
  return columns.index_select(0, i0) * (1 - w) + columns.index_select(0, i0 + 1) * w;
}

torch::Tensor smooth_band(const torch::Tensor& columns, int64_t side, int64_t r0, int64_t rows) {
  return smooth_rows(columns, side, torch::arange(r0, r0 + rows, torch::kLong));
}

torch::Tensor interpolate_columns(const torch::Tensor& coarse, int64_t side) {
  return smooth_band(coarse.t().contiguous(), side, 0, side).t().contiguous();
}

}  // namespace

torch::Tensor read_image(const std::string& path) {
  if (!std::ifstream(path).good()) SPVIT_THROW(DataError, "cannot open image '", path, "' (missing or unreadable)");
#if SPVIT_HAVE_OPENCV
  cv::Mat m;
  try {  // OpenCV throws for some bad files (e.g. sizes over its limits); its message does not name the file
    m = cv::imread(path, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    SPVIT_THROW(DataError, "cannot decode image '", path, "': ", e.what());
  }
  if (m.empty()) {
    SPVIT_THROW(DataError, "cannot decode image '", path, "': not an image OpenCV can decode (corrupt, truncated or an "
                "unsupported format)");
  }
  if (m.depth() == CV_16U) m.convertTo(m, CV_8U, 1.0 / 257.0);
  else if (m.depth() != CV_8U) m.convertTo(m, CV_8U);
  if (m.channels() == 3) cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
  else if (m.channels() == 4) cv::cvtColor(m, m, cv::COLOR_BGRA2RGB);
  else if (m.channels() != 1) SPVIT_THROW(DataError, "'", path, "' has ", m.channels(), " channels; expected 1, 3 or 4");
  auto out = torch::empty({m.rows, m.cols, m.channels()}, torch::kByte);
  cv::Mat dst = as_mat(out);
  m.copyTo(dst);
  return out;
#else
  no_opencv("reading images");
#endif
}

void write_image(const std::string& path, const torch::Tensor& image) {
#if SPVIT_HAVE_OPENCV
  SPVIT_CHECK(image.dim() == 3 && (image.size(2) == 1 || image.size(2) == 3) && image.numel() > 0,
              "write_image: expected [H, W, 1 or 3], got ", image.sizes());
  const auto host = image.to(torch::kCPU, torch::kByte).contiguous();
  cv::Mat m = as_mat(host), bgr;
  if (m.channels() == 3) cv::cvtColor(m, bgr, cv::COLOR_RGB2BGR);
  else bgr = m;
  bool ok = false;
  try {
    ok = cv::imwrite(path, bgr);
  } catch (const cv::Exception& e) {
    SPVIT_THROW(DataError, "cannot write image '", path, "': ", e.what());
  }
  if (!ok) SPVIT_THROW(DataError, "cannot write image '", path, "'");
#else
  (void)path;
  (void)image;
  no_opencv("writing images");
#endif
}

torch::Tensor draw_layout(const torch::Tensor& image, const PatchLayout& layout, int64_t max_side) {
#if SPVIT_HAVE_OPENCV
  check_image(image, 2, "draw_layout");
  SPVIT_CHECK(layout.spatial_dims == 2, "draw_layout draws 2-D layouts, got a ", layout.spatial_dims, "-D one");
  auto rgb = image.to(torch::kCPU, torch::kByte);
  if (rgb.size(2) == 1) rgb = rgb.expand({-1, -1, 3});
  rgb = rgb.narrow(2, 0, 3).contiguous();
  const int64_t H = rgb.size(0), W = rgb.size(1);
  const double scale = max_side > 0 ? std::min(1.0, static_cast<double>(max_side) / static_cast<double>(std::max(H, W))) : 1.0;
  cv::Mat canvas;
  if (scale < 1.0) {
    cv::resize(as_mat(rgb), canvas, cv::Size(std::max(1, static_cast<int>(W * scale)), std::max(1, static_cast<int>(H * scale))),
               0, 0, cv::INTER_AREA);
  } else {
    canvas = as_mat(rgb).clone();
  }
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = 0;
  for (int64_t i = 0; i < layout.length(); ++i) {
    if (layout.empty_slot(i)) continue;
    lo = std::min(lo, layout.level[i]);
    hi = std::max(hi, layout.level[i]);
  }
  // One rectangle per leaf: drawing is for inspection, so a loop over leaves is fine here.
  for (int64_t i = 0; i < layout.length(); ++i) {
    if (!layout.intersects_image(i)) continue;
    const double t = hi > lo ? static_cast<double>(layout.level[i] - lo) / static_cast<double>(hi - lo) : 1.0;
    const cv::Scalar colour(255.0 * t, 40.0, 255.0 * (1.0 - t));  // RGB: deep leaves red, shallow ones blue
    const auto s = static_cast<double>(layout.side[i]);
    const cv::Point a(static_cast<int>(layout.x[i] * scale), static_cast<int>(layout.y[i] * scale));
    const cv::Point b(static_cast<int>((layout.x[i] + s) * scale) - 1, static_cast<int>((layout.y[i] + s) * scale) - 1);
    cv::rectangle(canvas, a, b, colour, 1);
  }
  auto out = torch::empty({canvas.rows, canvas.cols, 3}, torch::kByte);
  cv::Mat dst = as_mat(out);
  canvas.copyTo(dst);
  return out;
#else
  (void)image;
  (void)layout;
  (void)max_side;
  no_opencv("drawing layouts");
#endif
}

torch::Tensor synthetic_tissue(int64_t side, uint64_t seed, double tissue_fraction) {
  if (side < 2) SPVIT_THROW(ConfigError, "synthetic image side must be >= 2, got ", side);
  if (!(tissue_fraction >= 0.0 && tissue_fraction <= 1.0)) {
    SPVIT_THROW(ConfigError, "tissue fraction must be in [0, 1], got ", tissue_fraction);
  }
  auto gen = at::detail::createCPUGenerator(seed);
  auto noise = [&](int64_t g) { return torch::rand({g, g}, gen, torch::kFloat32); };
  // Tissue: three octaves of smooth noise (blobs a few tenths of the image wide), thresholded at the quantile that
  // leaves `tissue_fraction` of the area as tissue. Nuclei: sparse peaks of a noise field with ~10-pixel cells.
  // Stroma: a field with ~6-pixel cells for fibre-like texture.
  const int64_t nuclei_cells = std::max<int64_t>(2, side / 10), stroma_cells = std::max<int64_t>(2, side / 6);
  std::vector<torch::Tensor> octaves;
  for (int64_t g : {6, 12, 24}) octaves.push_back(interpolate_columns(noise(g), side));
  const auto nuclei = interpolate_columns(noise(nuclei_cells), side);
  const auto stroma = interpolate_columns(noise(stroma_cells), side);
  auto tissue_field = [&](const torch::Tensor& rows) {
    return smooth_rows(octaves[0], side, rows) + smooth_rows(octaves[1], side, rows) * 0.5 +
           smooth_rows(octaves[2], side, rows) * 0.25;
  };
  // Threshold from a strided sample of the field (its quantile does not need every pixel).
  const int64_t step = std::max<int64_t>(1, side / 512);
  const auto sample = tissue_field(torch::arange(0, side, step, torch::kLong))
                          .index({torch::indexing::Slice(), torch::indexing::Slice(0, side, step)});
  const double threshold =
      tissue_fraction >= 1.0 ? -1.0
      : tissue_fraction <= 0.0 ? 10.0
      : torch::quantile(sample.flatten(), 1.0 - tissue_fraction).item<double>();
  auto out = torch::empty({side, side, 3}, torch::kByte);
  const auto background = torch::tensor({238.f, 234.f, 240.f}), pink = torch::tensor({222.f, 150.f, 196.f}),
             nucleus = torch::tensor({72.f, 44.f, 128.f});
  const int64_t band = detail::band_rows(side);  // small bands: temporaries stay in cache (banding.h)
  for (int64_t r0 = 0; r0 < side; r0 += band) {
    const int64_t rows = std::min(band, side - r0);
    const auto mask = ((tissue_field(torch::arange(r0, r0 + rows, torch::kLong)) - threshold) * 40.0).clamp(0.0, 1.0).unsqueeze(2);
    const auto texture = (smooth_band(stroma, side, r0, rows) - 0.5).unsqueeze(2) * 70.0;
    const auto nuc = ((smooth_band(nuclei, side, r0, rows) - 0.78) * 12.0).clamp(0.0, 1.0).unsqueeze(2) * mask;
    auto rgb = background * (1 - mask) + (pink + texture) * mask;
    rgb = rgb * (1 - nuc) + nucleus * nuc;
    out.narrow(0, r0, rows).copy_(rgb.round().clamp(0, 255));
  }
  return out;
}

}  // namespace spvit::patch

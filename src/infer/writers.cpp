// GeoJSON, PNG overlay and the reduced label image (see writers.h). OpenCV + nlohmann-json only.
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"
#include "spvit/infer/writers.h"
#include "spvit/train/class_colours.h"

namespace spvit::infer {

ReducedLabels::ReducedLabels(int64_t width, int64_t height, int64_t max_side) {
  while ((std::max(width, height) + factor_ - 1) / factor_ > max_side) factor_ *= 2;
  image_ = cv::Mat(static_cast<int>((height + factor_ - 1) / factor_), static_cast<int>((width + factor_ - 1) / factor_),
                   CV_8U, cv::Scalar(0));
}

void ReducedLabels::append(int64_t y0, const cv::Mat& rows) {
  for (int r = 0; r < rows.rows; ++r) {
    const int64_t y = y0 + r;
    if (y % factor_ != 0) continue;
    const uint8_t* src = rows.ptr<uint8_t>(r);
    uint8_t* dst = image_.ptr<uint8_t>(static_cast<int>(y / factor_));
    for (int i = 0; i < image_.cols; ++i) dst[i] = src[static_cast<int64_t>(i) * factor_];
  }
}

cv::Vec3b class_colour(int k) {  // RGB, the colours of spvit eval's overlays
  const auto& c = train::class_colour_rgb(k);
  return {c[0], c[1], c[2]};
}

int64_t write_geojson(const std::string& path, const cv::Mat& labels, double scale,
                      const std::vector<std::string>& class_names, double epsilon, std::array<double, 2> origin) {
  // Streamed to the file one polygon at a time: only one class's contours are in memory, never the document.
  int64_t polygons = 0;
  auto ring = [&](const std::vector<cv::Point>& contour) {
    std::vector<cv::Point> simple;
    cv::approxPolyDP(contour, simple, epsilon, true);
    nlohmann::json r = nlohmann::json::array();
    if (simple.size() < 3) return r;
    for (const auto& p : simple) r.push_back({p.x * scale - origin[0], p.y * scale - origin[1]});
    r.push_back(r.front());  // GeoJSON rings are closed
    return r;
  };
  write_file_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp);
    out << "{\"type\": \"FeatureCollection\", \"features\": [";
    bool first_feature = true;
    for (size_t c = 1; c < class_names.size(); ++c) {
      cv::Mat binary = labels == static_cast<int>(c);
      if (cv::countNonZero(binary) == 0) continue;
      std::vector<std::vector<cv::Point>> contours;
      std::vector<cv::Vec4i> hierarchy;
      cv::findContours(binary, contours, hierarchy, cv::RETR_CCOMP, cv::CHAIN_APPROX_SIMPLE);
      bool first_polygon = true;
      for (size_t i = 0; i < contours.size(); ++i) {
        if (hierarchy[i][3] >= 0) continue;  // a hole: written with its outer ring
        auto outer = ring(contours[i]);
        if (outer.empty()) continue;
        nlohmann::json polygon = nlohmann::json::array({outer});
        for (int h = hierarchy[i][2]; h >= 0; h = hierarchy[static_cast<size_t>(h)][0]) {
          auto hole = ring(contours[static_cast<size_t>(h)]);
          if (!hole.empty()) polygon.push_back(hole);
        }
        if (first_polygon) {
          const auto col = class_colour(static_cast<int>(c));
          const nlohmann::json props{
              {"objectType", "annotation"},
              {"class_id", c},
              {"name", class_names[c]},
              {"classification", {{"name", class_names[c]}, {"color", {col[0], col[1], col[2]}}}}};
          out << (first_feature ? "\n" : ",\n") << "{\"type\": \"Feature\", \"properties\": " << props.dump()
              << ", \"geometry\": {\"type\": \"MultiPolygon\", \"coordinates\": [";
          first_feature = false;
        }
        out << (first_polygon ? "" : ",") << polygon.dump();
        first_polygon = false;
        ++polygons;
      }
      if (!first_polygon) out << "]}}";
    }
    out << "\n]}\n";
    check_stream_written(out, path);
  });
  return polygons;
}

void write_overlay_png(const std::string& path, const cv::Mat& thumbnail_rgb, const cv::Mat& labels) {
  cv::Mat lab;
  cv::resize(labels, lab, thumbnail_rgb.size(), 0, 0, cv::INTER_NEAREST);
  cv::Mat out = thumbnail_rgb.clone();
  for (int y = 0; y < out.rows; ++y) {
    auto* o = out.ptr<cv::Vec3b>(y);
    const auto* l = lab.ptr<uint8_t>(y);
    for (int x = 0; x < out.cols; ++x) {
      if (l[x] == 0) continue;
      const auto c = class_colour(l[x]);
      for (int k = 0; k < 3; ++k) o[x][k] = static_cast<uint8_t>(0.45 * o[x][k] + 0.55 * c[k]);
    }
  }
  cv::Mat bgr;
  cv::cvtColor(out, bgr, cv::COLOR_RGB2BGR);
  std::vector<uchar> png;
  SPVIT_CHECK(cv::imencode(".png", bgr, png), "cannot encode overlay PNG '", path, "'");
  write_bytes_atomically(path, png.data(), png.size());
}

}  // namespace spvit::infer

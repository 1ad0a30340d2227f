// GeoJSON, PNG overlay and the reduced label image (see writers.h). OpenCV + nlohmann-json only.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/data/polygon_geometry.h"
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

cv::Vec3b class_colour(int k, const ClassColours& colours) {  // RGB
  const auto& c = k >= 0 && static_cast<size_t>(k) < colours.size() ? colours[static_cast<size_t>(k)]
                                                                     : train::class_colour_rgb(k);
  return {c[0], c[1], c[2]};
}

std::vector<RegionContours> region_contours(const cv::Mat& binary) {
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(binary, contours, cv::RETR_LIST, cv::CHAIN_APPROX_SIMPLE);
  cv::Mat component;
  cv::connectedComponents(binary, component, 8, CV_32S);
  std::vector<RegionContours> out;
  std::vector<size_t> holes;
  std::vector<int> slot;  // component label -> index in out (-1: none yet)
  for (size_t i = 0; i < contours.size(); ++i) {
    const auto& c = contours[i];
    // Suzuki's border following traces outer borders one way and hole borders the other (image y down: a hole's
    // oriented area is positive); a zero-area border (a one-pixel-wide region) is always an outer one.
    if (cv::contourArea(c, true) > 0) {
      holes.push_back(i);
      continue;
    }
    const int label = component.at<int>(c[0]);
    if (static_cast<size_t>(label) >= slot.size()) slot.resize(static_cast<size_t>(label) + 1, -1);
    slot[static_cast<size_t>(label)] = static_cast<int>(out.size());
    out.push_back({c, {}});
  }
  // A hole's border runs through pixels of the region around it: their component names its outer border.
  for (size_t i : holes) {
    const int label = component.at<int>(contours[i][0]);
    const int r = static_cast<size_t>(label) < slot.size() ? slot[static_cast<size_t>(label)] : -1;
    SPVIT_CHECK(r >= 0, "vectorising labels: a hole border with no outer border around it");
    out[static_cast<size_t>(r)].holes.push_back(contours[i]);
  }
  return out;
}

namespace {

// The regions of class `c` in `labels` as valid polygons in output coordinates: OpenCV contours with their holes,
// simplified by approxPolyDP (which can make a ring cross itself, so GEOS makes them valid again), times `scale`
// less `origin`.
std::vector<data::PolygonPart> class_polygons(const cv::Mat& labels, int c, double scale, double epsilon,
                                              std::array<double, 2> origin, data::PolygonGeometry& geometry) {
  std::vector<data::PolygonPart> parts;
  cv::Mat binary = labels == c;
  if (cv::countNonZero(binary) == 0) return parts;
  auto ring = [&](const std::vector<cv::Point>& contour) {
    std::vector<cv::Point> simple;
    cv::approxPolyDP(contour, simple, epsilon, true);
    data::Ring r;
    if (simple.size() < 3) return r;
    for (const auto& p : simple) r.push_back({p.x * scale - origin[0], p.y * scale - origin[1]});
    return r;
  };
  for (const auto& region : region_contours(binary)) {
    data::PolygonPart part;
    part.exterior = ring(region.outer);
    if (part.exterior.empty()) continue;
    for (const auto& h : region.holes) {
      auto hole = ring(h);
      if (!hole.empty()) part.holes.push_back(std::move(hole));
    }
    parts.push_back(std::move(part));
  }
  geometry.make_valid(parts);
  return parts;
}

nlohmann::json closed_ring(const data::Ring& ring) {
  nlohmann::json r = nlohmann::json::array();
  for (const auto& v : ring) r.push_back({v[0], v[1]});
  r.push_back(r.front());  // GeoJSON rings are closed
  return r;
}

// `text` with XML's special characters escaped (attribute values).
std::string xml_escaped(const std::string& text) {
  std::string out;
  for (char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string hex_colour(const cv::Vec3b& c) { return data::colour_text({c[0], c[1], c[2]}); }

}  // namespace

int64_t write_geojson(const std::string& path, const cv::Mat& labels, double scale,
                      const std::vector<std::string>& class_names, double epsilon, std::array<double, 2> origin,
                      const ClassColours& colours) {
  // Streamed to the file one polygon at a time: only one class's polygons are in memory, never the document.
  int64_t polygons = 0;
  data::PolygonGeometry geometry;
  write_file_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp);
    out << "{\"type\": \"FeatureCollection\", \"features\": [";
    bool first_feature = true;
    for (size_t c = 1; c < class_names.size(); ++c) {
      const auto parts = class_polygons(labels, static_cast<int>(c), scale, epsilon, origin, geometry);
      if (parts.empty()) continue;
      const auto col = class_colour(static_cast<int>(c), colours);
      const nlohmann::json props{
          {"objectType", "annotation"},
          {"class_id", c},
          {"name", class_names[c]},
          {"classification", {{"name", class_names[c]}, {"color", {col[0], col[1], col[2]}}}}};
      out << (first_feature ? "\n" : ",\n") << "{\"type\": \"Feature\", \"properties\": " << props.dump()
          << ", \"geometry\": {\"type\": \"MultiPolygon\", \"coordinates\": [";
      first_feature = false;
      for (size_t k = 0; k < parts.size(); ++k) {
        nlohmann::json polygon = nlohmann::json::array({closed_ring(parts[k].exterior)});
        for (const auto& hole : parts[k].holes) polygon.push_back(closed_ring(hole));
        out << (k ? "," : "") << polygon.dump();
        ++polygons;
      }
      out << "]}}";
    }
    out << "\n]}\n";
    check_stream_written(out, path);
  });
  return polygons;
}

int64_t write_asap_xml(const std::string& path, const cv::Mat& labels, double scale,
                       const std::vector<std::string>& class_names, double epsilon, std::array<double, 2> origin,
                       const ClassColours& colours) {
  int64_t annotations = 0, outlines_only = 0;
  data::PolygonGeometry geometry;
  write_file_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp);
    out.precision(17);
    out << "<?xml version=\"1.0\"?>\n<ASAP_Annotations>\n\t<Annotations>\n";
    for (size_t c = 1; c < class_names.size(); ++c) {
      const std::string group = xml_escaped(class_names[c]);
      const std::string colour = hex_colour(class_colour(static_cast<int>(c), colours));
      for (const auto& part : class_polygons(labels, static_cast<int>(c), scale, epsilon, origin, geometry)) {
        std::vector<data::Ring> rings;
        try {
          rings = geometry.hole_free(part);
        } catch (const Error& e) {  // a polygon too large to repair, which GEOS cannot cut: its outline only
          rings = {part.exterior};
          ++outlines_only;
          if (outlines_only == 1) log::warn("ASAP XML '{}': {}; written as its outline, without holes", path, e.what());
        }
        for (const auto& ring : rings) {
          out << "\t\t<Annotation Name=\"Annotation " << annotations++ << "\" Type=\"Polygon\" PartOfGroup=\"" << group
              << "\" Color=\"" << colour << "\">\n\t\t\t<Coordinates>\n";
          for (size_t k = 0; k < ring.size(); ++k) {
            out << "\t\t\t\t<Coordinate Order=\"" << k << "\" X=\"" << ring[k][0] << "\" Y=\"" << ring[k][1]
                << "\" />\n";
          }
          out << "\t\t\t</Coordinates>\n\t\t</Annotation>\n";
        }
      }
    }
    out << "\t</Annotations>\n\t<AnnotationGroups>\n";
    for (size_t c = 1; c < class_names.size(); ++c) {
      out << "\t\t<Group Name=\"" << xml_escaped(class_names[c]) << "\" PartOfGroup=\"None\" Color=\""
          << hex_colour(class_colour(static_cast<int>(c), colours)) << "\">\n\t\t\t<Attributes />\n\t\t</Group>\n";
    }
    out << "\t</AnnotationGroups>\n</ASAP_Annotations>\n";
    check_stream_written(out, path);
  });
  return annotations;
}

void write_overlay_png(const std::string& path, const cv::Mat& thumbnail_rgb, const cv::Mat& labels,
                       const ClassColours& colours) {
  cv::Mat lab;
  cv::resize(labels, lab, thumbnail_rgb.size(), 0, 0, cv::INTER_NEAREST);
  cv::Mat out = thumbnail_rgb.clone();
  for (int y = 0; y < out.rows; ++y) {
    auto* o = out.ptr<cv::Vec3b>(y);
    const auto* l = lab.ptr<uint8_t>(y);
    for (int x = 0; x < out.cols; ++x) {
      if (l[x] == 0) continue;
      const auto c = class_colour(l[x], colours);
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

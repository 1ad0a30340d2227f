// ASAP XML -> AnnotationSet (annotations.h), and the reader that picks the format by the file's extension.
#include <pugixml.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "spvit/core/error.h"
#include "spvit/data/annotations.h"
#include "annotation_files.h"

namespace spvit::data {
namespace {

double number_attribute(const pugi::xml_node& node, const char* name, const std::string& where) {
  const auto attribute = node.attribute(name);
  const char* text = attribute.as_string(nullptr);
  char* end = nullptr;
  const double value = text ? std::strtod(text, &end) : 0.0;
  if (!text || end == text || *end != '\0' || !plausible_coordinate(value)) {
    SPVIT_THROW(DataError, where, ": attribute ", name, " must be a number (|v| <= 1e9), got '",
                text ? text : "(missing)", "'");
  }
  return value;
}

}  // namespace

AnnotationSet parse_asap_xml(const std::string& text, const std::string& source) {
  pugi::xml_document doc;
  const auto parsed = doc.load_buffer(text.data(), text.size());
  if (!parsed) {
    SPVIT_THROW(DataError, "annotations '", source, "' are not valid XML (line ", detail::line_at(text, parsed.offset),
                "): ", parsed.description());
  }
  const auto annotations = doc.child("ASAP_Annotations").child("Annotations");
  if (!doc.child("ASAP_Annotations")) {
    SPVIT_THROW(DataError, "annotations '", source, "' are not ASAP XML (no <ASAP_Annotations> element)");
  }
  AnnotationSet set;
  set.source = source;
  int64_t index = 0;
  for (const auto& node : annotations.children("Annotation")) {
    const std::string where = "annotations '" + source + "', annotation " + std::to_string(index++) + " ('" +
                              node.attribute("Name").as_string() + "')";
    const std::string type = node.attribute("Type").as_string("Polygon");
    if (type == "Dot" || type == "PointSet") {
      ++set.skipped_points;
      continue;
    }
    if (type != "Polygon" && type != "Rectangle" && type != "Spline") {
      SPVIT_THROW(DataError, where, ": unknown annotation type '", type, "'");
    }
    // Vertices in their Order (files written by hand or by other tools need not list them sorted).
    std::vector<std::pair<double, std::array<double, 2>>> ordered;
    for (const auto& c : node.child("Coordinates").children("Coordinate")) {
      const double order = c.attribute("Order") ? number_attribute(c, "Order", where) : static_cast<double>(ordered.size());
      ordered.push_back({order, {number_attribute(c, "X", where), number_attribute(c, "Y", where)}});
    }
    std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    PolygonPart part;
    for (const auto& [order, v] : ordered) part.exterior.push_back(v);
    if (part.exterior.size() > 1 && part.exterior.front() == part.exterior.back()) part.exterior.pop_back();
    if (part.exterior.size() < 3) {
      ++set.skipped_empty;
      continue;
    }
    Annotation a;
    a.class_name = node.attribute("PartOfGroup").as_string("None");
    a.source_index = index - 1;
    // ASAP's colour, "#rrggbb" (any case); anything else is no colour rather than an error: it only paints outputs.
    std::array<uint8_t, 3> rgb{};
    if (parse_colour(node.attribute("Color").as_string(""), rgb)) a.colour = colour_text(rgb);
    a.parts.push_back(std::move(part));
    a.update_bounds();
    set.annotations.push_back(std::move(a));
  }
  repair_invalid_polygons(set);
  return set;
}

AnnotationSet read_asap_xml(const std::string& path) { return parse_asap_xml(detail::read_annotation_text(path), path); }

AnnotationSet read_annotations(const std::string& path, const GeoJsonOptions& options) {
  auto ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".geojson" || ext == ".json") return read_qupath_geojson(path, options);
  if (ext == ".xml") return read_asap_xml(path);
  SPVIT_THROW(DataError, "annotations '", path, "': unknown format '", ext,
              "' (QuPath GeoJSON: .geojson or .json; ASAP: .xml)");
}

}  // namespace spvit::data

// QuPath GeoJSON -> AnnotationSet (annotations.h), and the class-name -> label map.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "spvit/core/error.h"
#include "spvit/data/annotations.h"
#include "annotation_files.h"

namespace spvit::data {
namespace {

using Json = nlohmann::json;

// Thrown inside the parser; turned into a DataError naming the file and the feature.
struct GeometryProblem {
  std::string what;
};

std::array<double, 2> vertex_of(const Json& v) {
  if (!v.is_array() || v.size() < 2 || !v[0].is_number() || !v[1].is_number()) {
    throw GeometryProblem{"a position must be [x, y] numbers, got " + v.dump()};
  }
  const std::array<double, 2> p{v[0].get<double>(), v[1].get<double>()};
  if (!plausible_coordinate(p[0]) || !plausible_coordinate(p[1])) {
    throw GeometryProblem{"position " + v.dump() + " is not a level-0 pixel coordinate (|x|, |y| <= 1e9)"};
  }
  return p;
}

// A GeoJSON linear ring (closed: last == first) -> Ring without the repeated vertex. Rings of fewer than three
// distinct vertices have no area and come back empty.
Ring ring_of(const Json& r) {
  if (!r.is_array()) throw GeometryProblem{"a polygon ring must be an array of positions"};
  Ring ring;
  for (const auto& v : r) ring.push_back(vertex_of(v));
  if (ring.size() > 1 && ring.front() == ring.back()) ring.pop_back();
  if (ring.size() < 3) ring.clear();
  return ring;
}

// Polygon coordinates [exterior, hole...] -> a part (empty exterior when degenerate).
PolygonPart part_of(const Json& rings) {
  if (!rings.is_array() || rings.empty()) throw GeometryProblem{"a polygon needs at least its exterior ring"};
  PolygonPart p;
  p.exterior = ring_of(rings[0]);
  for (size_t k = 1; k < rings.size(); ++k) {
    auto hole = ring_of(rings[k]);
    if (!hole.empty()) p.holes.push_back(std::move(hole));
  }
  return p;
}

// Adds the polygons of `geometry` to `out`, counting what has no area in `set`.
void collect_parts(const Json& geometry, std::vector<PolygonPart>& out, AnnotationSet& set) {
  if (geometry.is_null()) return;
  if (!geometry.is_object() || !geometry.contains("type")) throw GeometryProblem{"a geometry needs a \"type\""};
  const auto type = geometry.at("type").get<std::string>();
  if (type == "GeometryCollection") {
    if (!geometry.contains("geometries")) throw GeometryProblem{"GeometryCollection without \"geometries\""};
    for (const auto& g : geometry.at("geometries")) collect_parts(g, out, set);
    return;
  }
  if (!geometry.contains("coordinates")) throw GeometryProblem{type + " without \"coordinates\""};
  const auto& c = geometry.at("coordinates");
  if (type == "Polygon") {
    out.push_back(part_of(c));
  } else if (type == "MultiPolygon") {
    if (!c.is_array()) throw GeometryProblem{"MultiPolygon coordinates must be an array of polygons"};
    for (const auto& polygon : c) out.push_back(part_of(polygon));
  } else if (type == "LineString" || type == "MultiLineString") {
    ++set.skipped_lines;
  } else if (type == "Point" || type == "MultiPoint") {
    ++set.skipped_points;
  } else {
    throw GeometryProblem{"unknown geometry type '" + type + "'"};
  }
}

std::string class_of(const Json& properties) {
  if (!properties.is_object()) return "";
  const auto c = properties.find("classification");
  if (c != properties.end() && c->is_object() && c->contains("name") && c->at("name").is_string()) {
    return c->at("name").get<std::string>();
  }
  return "";
}

// QuPath's class colour: classification.color as [r, g, b] (QuPath 0.2+), or a packed (A)RGB integer ("" if none).
std::string colour_of(const Json& properties) {
  if (!properties.is_object()) return "";
  const auto c = properties.find("classification");
  if (c == properties.end() || !c->is_object()) return "";
  const auto colour = c->find("color");
  if (colour != c->end() && colour->is_array() && colour->size() == 3) {
    std::array<uint8_t, 3> rgb{};
    for (size_t k = 0; k < 3; ++k) {
      if (!(*colour)[k].is_number()) return "";
      rgb[k] = static_cast<uint8_t>(std::clamp((*colour)[k].get<double>(), 0.0, 255.0));
    }
    return colour_text(rgb);
  }
  const auto packed = c->find("colorRGB");
  if (packed != c->end() && packed->is_number_integer()) {
    const auto v = static_cast<uint32_t>(packed->get<int64_t>());
    return colour_text({static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)});
  }
  return "";
}

bool is_detection(const Json& properties) {
  if (!properties.is_object()) return false;
  const auto t = properties.find("objectType");
  return t != properties.end() && t->is_string() && (*t == "detection" || *t == "cell" || *t == "tile");
}

void add_feature(const Json& feature, AnnotationSet& set, const GeoJsonOptions& options) {
  const Json none;
  const auto& properties = feature.contains("properties") ? feature.at("properties") : none;
  if (!options.include_detections && is_detection(properties)) {
    ++set.skipped_detections;
    return;
  }
  Annotation a;
  a.class_name = class_of(properties);
  a.colour = colour_of(properties);
  std::vector<PolygonPart> parts;
  collect_parts(feature.contains("geometry") ? feature.at("geometry") : none, parts, set);
  for (auto& p : parts) {
    if (!p.exterior.empty()) a.parts.push_back(std::move(p));
  }
  if (a.parts.empty()) {
    // Lines and points were counted above; what remains had no geometry or only degenerate rings.
    const bool had_geometry = feature.contains("geometry") && !feature.at("geometry").is_null();
    if (!parts.empty() || !had_geometry) ++set.skipped_empty;
    return;
  }
  a.update_bounds();
  set.annotations.push_back(std::move(a));
}

}  // namespace

AnnotationSet parse_qupath_geojson(const std::string& text, const std::string& source, const GeoJsonOptions& options) {
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::parse_error& e) {
    SPVIT_THROW(DataError, "annotations '", source, "' are not valid JSON (line ", detail::line_at(text, static_cast<long long>(e.byte)), "): ",
                e.what());
  }
  AnnotationSet set;
  set.source = source;
  // The features, whatever the wrapping: FeatureCollection, an array of features, one feature, or a bare geometry.
  std::vector<Json> features;
  if (root.is_array()) {
    features.assign(root.begin(), root.end());
  } else if (root.is_object() && root.value("type", "") == "FeatureCollection") {
    if (!root.contains("features") || !root.at("features").is_array()) {
      SPVIT_THROW(DataError, "annotations '", source, "': a FeatureCollection needs a \"features\" array");
    }
    features.assign(root.at("features").begin(), root.at("features").end());
  } else if (root.is_object() && root.value("type", "") == "Feature") {
    features.push_back(root);
  } else if (root.is_object() && root.contains("type")) {
    features.push_back(Json{{"type", "Feature"}, {"geometry", root}});
  } else {
    SPVIT_THROW(DataError, "annotations '", source, "' hold no GeoJSON FeatureCollection, Feature or geometry");
  }
  for (size_t i = 0; i < features.size(); ++i) {
    try {
      if (!features[i].is_object()) throw GeometryProblem{"a feature must be a JSON object"};
      const size_t before = set.annotations.size();
      add_feature(features[i], set, options);
      if (set.annotations.size() > before) set.annotations.back().source_index = static_cast<int64_t>(i);
    } catch (const GeometryProblem& p) {
      SPVIT_THROW(DataError, "annotations '", source, "', feature ", i, ": ", p.what);
    } catch (const Json::exception& e) {
      SPVIT_THROW(DataError, "annotations '", source, "', feature ", i, ": ", e.what());
    }
  }
  repair_invalid_polygons(set);
  return set;
}

AnnotationSet read_qupath_geojson(const std::string& path, const GeoJsonOptions& options) {
  return parse_qupath_geojson(detail::read_annotation_text(path), path, options);
}

std::string colour_text(const std::array<uint8_t, 3>& rgb) {
  char text[8];
  std::snprintf(text, sizeof(text), "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  return text;
}

bool parse_colour(const std::string& text, std::array<uint8_t, 3>& rgb) {
  const bool hex = text.size() == 7 && text[0] == '#' &&
                   std::all_of(text.begin() + 1, text.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
  if (!hex) return false;
  const auto v = std::stoul(text.substr(1), nullptr, 16);
  rgb = {static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
  return true;
}

int64_t ClassMap::label_of(const std::string& name, const std::string& source) const {
  const auto it = ids.find(name);
  if (it != ids.end()) return it->second;
  std::string known;
  for (const auto& [n, id] : ids) known += (known.empty() ? "'" : ", '") + n + "'";
  SPVIT_THROW(DataError, "annotations '", source, "' use class '", name, "', which the class map does not name (known: ",
              known.empty() ? "none" : known, ")");
}

size_t ClassMap::rank_of(const std::string& name) const {
  const auto it = std::find(priority.begin(), priority.end(), name);
  return static_cast<size_t>(it - priority.begin());
}

}  // namespace spvit::data

// Vector annotations of whole-slide images (QuPath GeoJSON exports) as polygons in level-0 pixel coordinates, and
// their rasterisation into the label mask of any region at any downsample (docs/data.md, "Slide annotations").
//
// Rasterisation rule: a pixel belongs to a polygon iff its centre lies inside it — inside the exterior ring and not
// inside a hole, by the crossing rule: an odd number of the rings' edges cross the centre's row at or to the left of
// the centre (an edge crosses the row y when one end has y' <= y and the other y' > y). A centre exactly on an edge
// is therefore inside on left and top edges and outside on right and bottom ones, so polygons that share an edge
// never both take its pixels. Vertices keep their level-0 precision, so at a coarser level each pixel is
// decided by its own centre, not by rounded vertices. The parts of a MultiPolygon (or GeometryCollection) are
// united: where two parts overlap the pixel stays filled. Where annotations of different labels overlap, the
// one of higher priority wins (ClassMap::priority), and between equal priorities the later one in the file.
// OpenCV's fillPoly is not used: it fills by its own edge rules on rounded (fixed-point) vertices, which does not
// agree with the pixel-centre rule at the borders that training targets depend on.
#pragma once
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace spvit::data {

using Ring = std::vector<std::array<double, 2>>;  // (x, y) in level-0 pixels; closed implicitly (last != first)

struct PolygonPart {
  Ring exterior;
  std::vector<Ring> holes;
};

struct Annotation {
  std::string class_name;          // QuPath: properties.classification.name ("" when unclassified)
  std::vector<PolygonPart> parts;  // one for a Polygon, several for a MultiPolygon / GeometryCollection (united)
  std::array<double, 4> bounds{};  // x0, y0, x1, y1 of all exterior vertices
  int64_t source_index = 0;        // its feature (GeoJSON) or annotation (ASAP) index in the file, for messages
  std::string colour;              // "#rrggbb" the file gives its class (QuPath classification.color, ASAP Color), or ""

  void update_bounds();  // after the parts change
};

struct AnnotationSet {
  std::string source;                   // the file they came from (for messages)
  std::vector<Annotation> annotations;  // in file order
  // What was left out, so that `spvit data check` can report it: line and point geometries (no area), QuPath
  // detections (cells) unless included, features without geometry or with only degenerate rings.
  int64_t skipped_lines = 0, skipped_points = 0, skipped_detections = 0, skipped_empty = 0;
  // Invalid polygons (repair_invalid_polygons): annotations repaired, and those left without area (skipped).
  int64_t repaired = 0, skipped_invalid = 0;
};

struct GeoJsonOptions {
  bool include_detections = false;  // QuPath objectType "detection"/"cell"/"tile": skipped (and counted) unless set
};

// A QuPath GeoJSON export: a FeatureCollection, a Feature, an array of Features, or a bare geometry. Polygon,
// MultiPolygon and GeometryCollection become annotations; LineString/Point geometries are skipped and counted.
// Throws DataError naming the file and the feature index (malformed geometry) or the line (JSON that does not parse).
AnnotationSet read_qupath_geojson(const std::string& path, const GeoJsonOptions& options = {});
AnnotationSet parse_qupath_geojson(const std::string& text, const std::string& source,
                                   const GeoJsonOptions& options = {});

// An ASAP XML file (<ASAP_Annotations><Annotations><Annotation Type PartOfGroup><Coordinates><Coordinate Order X Y>):
// Polygon, Rectangle and Spline annotations (a spline by its control points) become one-part annotations whose class
// is their PartOfGroup; Dot and PointSet are skipped and counted. Throws DataError naming the file and the line
// (XML that does not parse) or the annotation (a coordinate that is not a number, an unknown type).
AnnotationSet read_asap_xml(const std::string& path);
AnnotationSet parse_asap_xml(const std::string& text, const std::string& source);

// Makes every invalid polygon part valid (GEOS isValid / MakeValid, "structure" method: the area the exterior rings
// enclose, united where a ring overlaps itself, minus the holes, including where a hole reaches past its shell);
// annotations left without area are removed. Both parsers call it, so every AnnotationSet holds valid polygons: a
// repaired file gets one warning naming it, the count and the first problem (annotation index and GEOS's reason).
struct RepairReport {
  int64_t repaired = 0, dropped = 0;
  std::string first_problem;
};
RepairReport repair_invalid_polygons(AnnotationSet& set);

// By extension: .geojson / .json (QuPath), .xml (ASAP); anything else is a DataError.
AnnotationSet read_annotations(const std::string& path, const GeoJsonOptions& options = {});

// How class names become labels (the slide dataset, issue 13, will fill it from its configuration).
struct ClassMap {
  static constexpr int64_t kIgnore = -1;  // pixels counted by neither the cross-entropy nor the Dice
  std::map<std::string, int64_t> ids;     // name -> label (>= 1, 0 is background) or kIgnore
  std::vector<std::string> priority;      // highest first; names not listed rank below every listed one

  // Throws DataError naming `source` and listing the known names when `name` has no label.
  int64_t label_of(const std::string& name, const std::string& source) const;
  // 0 for the first name of `priority`, 1 for the next, ...; priority.size() for names not listed.
  size_t rank_of(const std::string& name) const;
};

// A uniform grid of buckets over the annotations' bounds: a region query visits only the annotations whose bounds
// meet the region, so a sample of a slide with thousands of polygons touches only its own.
class AnnotationIndex {
 public:
  explicit AnnotationIndex(std::shared_ptr<const AnnotationSet> set, double cell_side = 4096.0);
  // Indices (ascending, i.e. file order) of the annotations whose bounds meet [x0, x1) × [y0, y1) (level 0).
  std::vector<int64_t> query(double x0, double y0, double x1, double y1) const;
  const AnnotationSet& set() const { return *set_; }

  // The edges of a large polygon part bucketed by bands of y (level 0), so that rasterising a few rows touches only
  // the edges near them (a whole-slide tissue outline has 10^5 edges; an adaptive leaf is 16 rows). Parts of few
  // edges have none (null): scanning them all is as cheap.
  struct EdgeBands;
  const EdgeBands* edge_bands(int64_t annotation, size_t part) const;
  // Bounds {x0, y0, x1, y1} (level 0, closed) of each part of annotation `annotation`: a region skips the parts it
  // does not meet without looking at their vertices (a whole-slide MultiPolygon of 10^4 nuclei).
  const std::vector<std::array<double, 4>>& part_bounds(int64_t annotation) const {
    return part_bounds_.at(static_cast<size_t>(annotation));
  }
  ~AnnotationIndex();

 private:
  std::shared_ptr<const AnnotationSet> set_;
  std::vector<std::vector<std::shared_ptr<const EdgeBands>>> edge_bands_;  // [annotation][part]
  std::vector<std::vector<std::array<double, 4>>> part_bounds_;            // [annotation][part]
  double cell_;
  int64_t cx0_ = 0, cy0_ = 0, columns_ = 0, rows_ = 0;
  std::vector<std::vector<int64_t>> buckets_;
};

// Where the pixels of a label mask lie in level-0 coordinates: pixel (i, j) (row, column) has its centre at
// (x0 + (j + 0.5)·downsample, y0 + (i + 0.5)·downsample).
struct RasterGrid {
  double x0 = 0, y0 = 0, downsample = 1;
  int64_t height = 0, width = 0;
  double centre_x(int64_t j) const { return x0 + (static_cast<double>(j) + 0.5) * downsample; }
  double centre_y(int64_t i) const { return y0 + (static_cast<double>(i) + 0.5) * downsample; }
};

// The label mask [height, width] int64 of `grid`: each pixel gets the label of the highest-priority annotation
// containing its centre, else `background` (0, or ClassMap::kIgnore when unannotated pixels are to be ignored).
torch::Tensor rasterize(const AnnotationIndex& index, const ClassMap& classes, const RasterGrid& grid,
                        int64_t background = 0);

// "#rrggbb" of an RGB colour; parse_colour reads one back (false unless `text` is "#rrggbb", any case).
std::string colour_text(const std::array<uint8_t, 3>& rgb);
bool parse_colour(const std::string& text, std::array<uint8_t, 3>& rgb);

// Level-0 coordinates the readers accept: finite, |v| <= 1e9 (the largest slides are ~2e5 pixels a side).
inline bool plausible_coordinate(double v) { return v >= -1e9 && v <= 1e9; }

// The crossing rule for one point and one polygon part (exterior minus holes): the reference the rasteriser is
// tested against, and what it computes row by row.
bool polygon_contains(const PolygonPart& part, double x, double y);

}  // namespace spvit::data

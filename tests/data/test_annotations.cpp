// QuPath GeoJSON parsing and the pixel-centre rasteriser (data/annotations.h), against a brute-force reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "spvit/core/error.h"
#include "spvit/data/annotations.h"
#include "spvit/data/polygon_geometry.h"

namespace spvit::data {
namespace {

// Classic PNPOLY (W. R. Franklin): a ray to the right of (x, y) crosses the rings an odd number of times.
bool reference_inside(const PolygonPart& part, double x, double y) {
  bool inside = false;
  auto ring = [&](const Ring& r) {
    for (size_t i = 0, j = r.size() - 1; i < r.size(); j = i++) {
      const double xi = r[i][0], yi = r[i][1], xj = r[j][0], yj = r[j][1];
      if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
    }
  };
  ring(part.exterior);
  for (const auto& h : part.holes) ring(h);
  return inside;
}

// The label of every pixel centre by brute force: the annotations in painting order (priority, then file order).
torch::Tensor reference_labels(const AnnotationSet& set, const ClassMap& classes, const RasterGrid& g,
                               int64_t background) {
  auto out = torch::full({g.height, g.width}, background, torch::kLong);
  auto a = out.accessor<int64_t, 2>();
  for (int64_t i = 0; i < g.height; ++i) {
    for (int64_t j = 0; j < g.width; ++j) {
      size_t best_rank = 0;
      bool found = false;
      for (const auto& ann : set.annotations) {
        bool in = false;
        for (const auto& p : ann.parts) in = in || reference_inside(p, g.centre_x(j), g.centre_y(i));
        const size_t rank = classes.rank_of(ann.class_name);
        if (in && (!found || rank <= best_rank)) {  // higher priority (smaller rank), or equal and later in file
          a[i][j] = classes.label_of(ann.class_name, set.source);
          best_rank = rank;
          found = true;
        }
      }
    }
  }
  return out;
}

std::shared_ptr<AnnotationSet> parse(const std::string& json) {
  return std::make_shared<AnnotationSet>(parse_qupath_geojson(json, "test.geojson"));
}

ClassMap two_classes() {
  ClassMap c;
  c.ids = {{"Tumor", 1}, {"Stroma", 2}, {"Exclude", ClassMap::kIgnore}, {"", 1}};
  return c;
}

TEST(QuPathGeoJson, FeatureCollectionWithHolesMultiPolygonsAndSkippedGeometries) {
  const auto set = parse(R"({"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[10,0],[10,10],[0,10],[0,0]],
                                                                       [[2,2],[4,2],[4,4],[2,2]]]},
     "properties": {"objectType": "annotation", "classification": {"name": "Tumor", "color": [200, 0, 0]}}},
    {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [[[[20,0],[30,0],[30,5],[20,0]]],
                                                                            [[[40,0],[50,0],[50,5],[40,0]]]]},
     "properties": {"classification": {"name": "Stroma"}}},
    {"type": "Feature", "geometry": {"type": "GeometryCollection", "geometries": [
       {"type": "Polygon", "coordinates": [[[0,20],[5,20],[5,25],[0,20]]]},
       {"type": "LineString", "coordinates": [[0,0],[1,1]]}]}, "properties": {}},
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [3, 3]}, "properties": {}},
    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]},
     "properties": {"objectType": "detection", "classification": {"name": "Tumor"}}},
    {"type": "Feature", "geometry": null, "properties": {}},
    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,1],[0,0]]]}}
  ]})");
  ASSERT_EQ(set->annotations.size(), 3u);
  const auto& first = set->annotations[0];
  EXPECT_EQ(first.class_name, "Tumor");
  ASSERT_EQ(first.parts.size(), 1u);
  EXPECT_EQ(first.parts[0].exterior.size(), 4u) << "the closing vertex is dropped";
  ASSERT_EQ(first.parts[0].holes.size(), 1u);
  EXPECT_EQ(first.bounds, (std::array<double, 4>{0, 0, 10, 10}));
  EXPECT_EQ(set->annotations[1].class_name, "Stroma");
  EXPECT_EQ(set->annotations[1].parts.size(), 2u);
  EXPECT_EQ(set->annotations[2].class_name, "");
  EXPECT_EQ(set->annotations[2].parts.size(), 1u);
  EXPECT_EQ(set->skipped_lines, 1);
  EXPECT_EQ(set->skipped_points, 1);
  EXPECT_EQ(set->skipped_detections, 1);
  EXPECT_EQ(set->skipped_empty, 2);  // null geometry, degenerate ring

  GeoJsonOptions with_cells;
  with_cells.include_detections = true;
  const auto cells = parse_qupath_geojson(R"([{"type": "Feature", "properties": {"objectType": "cell"},
    "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}}])", "cells.geojson", with_cells);
  EXPECT_EQ(cells.annotations.size(), 1u) << "an array of features, detections included on request";
  EXPECT_EQ(parse(R"({"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1]]]})")->annotations.size(), 1u)
      << "a bare geometry";
}

TEST(QuPathGeoJson, ErrorsNameTheFileAndTheFeatureOrLine) {
  try {
    parse_qupath_geojson("{\"type\": \"FeatureCollection\",\n \"features\": [\n {,}]}", "broken.geojson");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'broken.geojson' are not valid JSON (line 3)"), std::string::npos) << e.what();
  }
  try {
    parse(R"({"type": "FeatureCollection", "features": [
      {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1]]]}},
      {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0,0],["a",0],[1,1]]]}}]})");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'test.geojson', feature 1: a position must be [x, y] numbers"),
              std::string::npos) << e.what();
  }
  EXPECT_THROW(read_qupath_geojson("/nonexistent/a.geojson"), DataError);
  EXPECT_THROW(parse(R"({"type": "Polygon", "coordinates": [[[0,0],[1e300,0],[1,1]]]})"), DataError);
  EXPECT_THROW(parse_asap_xml(R"(<ASAP_Annotations><Annotations><Annotation Type="Polygon"><Coordinates>
    <Coordinate Order="0" X="nan" Y="0"/></Coordinates></Annotation></Annotations></ASAP_Annotations>)", "nan.xml"),
               DataError);
  try {
    two_classes().label_of("Necrosis", "x.geojson");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("class 'Necrosis', which the class map does not name (known: '', 'Exclude', "
                                         "'Stroma', 'Tumor')"),
              std::string::npos) << e.what();
  }
}

TEST(AsapXml, PolygonsRectanglesGroupsAndVertexOrder) {
  const auto set = parse_asap_xml(R"(<?xml version="1.0"?>
<ASAP_Annotations>
  <Annotations>
    <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="_0" Color="#F4FA58">
      <Coordinates>
        <Coordinate Order="2" X="10" Y="10" />
        <Coordinate Order="0" X="0" Y="0" />
        <Coordinate Order="1" X="10.5" Y="0" />
        <Coordinate Order="3" X="0" Y="10" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Annotation 1" Type="Rectangle" PartOfGroup="_2">
      <Coordinates><Coordinate Order="0" X="5" Y="5" /><Coordinate Order="1" X="30" Y="5" />
        <Coordinate Order="2" X="30" Y="30" /><Coordinate Order="3" X="5" Y="30" /></Coordinates>
    </Annotation>
    <Annotation Name="Annotation 2" Type="Dot" PartOfGroup="_0">
      <Coordinates><Coordinate Order="0" X="5" Y="5" /></Coordinates>
    </Annotation>
  </Annotations>
  <AnnotationGroups><Group Name="_0" PartOfGroup="None" Color="#64FE2E"><Attributes /></Group></AnnotationGroups>
</ASAP_Annotations>)",
                                  "camelyon.xml");
  ASSERT_EQ(set.annotations.size(), 2u);
  EXPECT_EQ(set.annotations[0].class_name, "_0");
  EXPECT_EQ(set.annotations[0].parts[0].exterior,
            (Ring{{0, 0}, {10.5, 0}, {10, 10}, {0, 10}})) << "vertices in their Order";
  EXPECT_EQ(set.annotations[0].bounds, (std::array<double, 4>{0, 0, 10.5, 10}));
  EXPECT_EQ(set.annotations[1].class_name, "_2");
  EXPECT_EQ(set.skipped_points, 1);

  // Camelyon16's exclusion group maps to ignore and wins over tumour where both cover a pixel.
  ClassMap classes;
  classes.ids = {{"_0", 1}, {"_1", 1}, {"_2", ClassMap::kIgnore}};
  classes.priority = {"_2"};
  RasterGrid g;
  g.height = g.width = 32;
  const auto labels = rasterize(AnnotationIndex(std::make_shared<AnnotationSet>(set)), classes, g);
  EXPECT_EQ(labels[2][2].item<int64_t>(), 1);
  EXPECT_EQ(labels[7][7].item<int64_t>(), ClassMap::kIgnore) << "both cover it: the exclusion group's priority wins";
  EXPECT_EQ(labels[25][25].item<int64_t>(), ClassMap::kIgnore);
  EXPECT_EQ(labels[31][31].item<int64_t>(), 0);
}

TEST(AsapXml, ErrorsNameTheFileAndTheLineOrAnnotation) {
  try {
    parse_asap_xml("<ASAP_Annotations>\n<Annotations>\n<Annotation></Annotations>", "bad.xml");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'bad.xml' are not valid XML (line 3)"), std::string::npos) << e.what();
  }
  try {
    parse_asap_xml(R"(<ASAP_Annotations><Annotations><Annotation Name="a" Type="Polygon" PartOfGroup="g">
      <Coordinates><Coordinate Order="0" X="1" Y="oops" /></Coordinates></Annotation></Annotations>
      </ASAP_Annotations>)",
                   "coords.xml");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'coords.xml', annotation 0 ('a'): attribute Y must be a number (|v| <= 1e9), "
                                         "got 'oops'"),
              std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_asap_xml("<Other/>", "other.xml"), DataError);
  try {
    read_annotations("slide.csv");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown format '.csv'"), std::string::npos) << e.what();
  }
}

// A random simple-ish polygon: a star of n vertices around (cx, cy) with radii in [r/3, r].
Ring star(std::mt19937_64& rng, double cx, double cy, double r, int n) {
  std::uniform_real_distribution<double> radius(r / 3, r), jitter(-0.3, 0.3);
  Ring ring;
  for (int k = 0; k < n; ++k) {
    const double t = 2 * M_PI * (k + 0.5 + jitter(rng)) / n, s = radius(rng);
    ring.push_back({cx + s * std::cos(t), cy + s * std::sin(t)});
  }
  return ring;
}

Annotation annotation_of(std::string name, std::vector<PolygonPart> parts) {
  Annotation a;
  a.class_name = std::move(name);
  a.parts = std::move(parts);
  a.update_bounds();
  return a;
}

TEST(Rasterize, EqualsTheBruteForcePixelCentreRuleAtEveryDownsample) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> pos(0, 200);
  auto set = std::make_shared<AnnotationSet>();
  set->source = "random";
  const char* names[] = {"Tumor", "Stroma", "Exclude"};
  for (int k = 0; k < 12; ++k) {
    std::vector<PolygonPart> parts;
    const int n_parts = 1 + k % 3;  // MultiPolygons whose parts overlap (they stay filled)
    const double cx = pos(rng), cy = pos(rng);
    for (int p = 0; p < n_parts; ++p) {
      PolygonPart part;
      part.exterior = star(rng, cx + 15 * p, cy + 7 * p, 40, 5 + (k + p) % 9);
      if ((k + p) % 2 == 0) part.holes.push_back(star(rng, cx + 15 * p, cy + 7 * p, 12, 6));  // a hole
      parts.push_back(std::move(part));
    }
    set->annotations.push_back(annotation_of(names[k % 3], std::move(parts)));
  }
  // A hole that touches the exterior along an edge, and an axis-aligned square with vertices on pixel corners.
  PolygonPart notch;
  notch.exterior = {{100, 100}, {160, 100}, {160, 160}, {100, 160}};
  notch.holes = {{{100, 100}, {130, 100}, {115, 130}}};
  set->annotations.push_back(annotation_of("Stroma", {notch}));
  set->annotations.push_back(annotation_of("Tumor", {PolygonPart{{{10, 10}, {20, 10}, {20, 20}, {10, 20}}, {}}}));
  // Vertices on pixel centres (at downsample 1): centres exactly on edges, decided by the tie rule.
  set->annotations.push_back(
      annotation_of("Stroma", {PolygonPart{{{30.5, 30.5}, {40.5, 30.5}, {40.5, 40.5}, {30.5, 40.5}}, {}}}));
  const AnnotationIndex index(set, 64);

  for (const auto& priority : {std::vector<std::string>{}, std::vector<std::string>{"Exclude", "Tumor"}}) {
    auto classes = two_classes();
    classes.priority = priority;
    for (const double ds : {1.0, 2.5, 4.0, 0.75}) {
      for (const auto& origin : {std::array<double, 2>{0, 0}, std::array<double, 2>{13.3, -7.9}}) {
        RasterGrid g;
        g.x0 = origin[0];
        g.y0 = origin[1];
        g.downsample = ds;
        g.height = static_cast<int64_t>(std::ceil(230 / ds));
        g.width = static_cast<int64_t>(std::ceil(250 / ds));
        for (int64_t background : {int64_t{0}, ClassMap::kIgnore}) {
          const auto got = rasterize(index, classes, g, background);
          const auto want = reference_labels(*set, classes, g, background);
          ASSERT_TRUE(torch::equal(got, want))
              << "downsample " << ds << ", origin " << origin[0] << "," << origin[1] << ", priority size "
              << priority.size() << ": " << got.ne(want).sum().item<int64_t>() << " pixels differ";
        }
      }
    }
  }
}

// Parts of thousands of edges (a tissue outline with many holes) are rasterised from their edge bands: small
// windows (adaptive leaves: 4 to 16 rows) and the whole extent equal the brute-force pixel-centre rule.
TEST(Rasterize, LargePartsThroughEdgeBandsEqualTheBruteForceRuleInSmallWindows) {
  std::mt19937_64 rng(11);
  auto set = std::make_shared<AnnotationSet>();
  set->source = "large";
  PolygonPart outline;
  outline.exterior = star(rng, 150, 150, 140, 1500);
  for (int h = 0; h < 60; ++h) {
    outline.holes.push_back(star(rng, 90 + 12 * (h % 10), 90 + 12 * (h / 10), 5, 12));
  }
  set->annotations.push_back(annotation_of("Stroma", {outline}));
  set->annotations.push_back(annotation_of("Tumor", {PolygonPart{star(rng, 200, 120, 60, 900), {}}}));
  const AnnotationIndex index(set, 64);
  ASSERT_NE(index.edge_bands(0, 0), nullptr) << "the outline is banded";
  const auto classes = two_classes();
  std::uniform_real_distribution<double> corner(-10, 300);
  for (int w = 0; w < 60; ++w) {
    RasterGrid g;
    g.x0 = corner(rng);
    g.y0 = corner(rng);
    g.downsample = w % 3 == 0 ? 1.0 : (w % 3 == 1 ? 0.5 : 2.25);
    g.height = 4 + w % 13;
    g.width = 4 + (w * 7) % 29;
    const auto got = rasterize(index, classes, g, 0);
    ASSERT_TRUE(torch::equal(got, reference_labels(*set, classes, g, 0))) << "window " << w;
  }
  RasterGrid whole;
  whole.height = whole.width = 300;
  EXPECT_TRUE(torch::equal(rasterize(index, classes, whole, 0), reference_labels(*set, classes, whole, 0)));
}

TEST(Rasterize, OverlapsResolveByPriorityThenFileOrderAndMultiPolygonPartsStayFilled) {
  auto set = std::make_shared<AnnotationSet>();
  set->source = "overlap";
  const PolygonPart left{{{0, 0}, {6, 0}, {6, 4}, {0, 4}}, {}}, right{{{4, 0}, {10, 0}, {10, 4}, {4, 4}}, {}};
  set->annotations.push_back(annotation_of("Stroma", {left}));
  set->annotations.push_back(annotation_of("Tumor", {right}));
  set->annotations.push_back(annotation_of("Stroma", {PolygonPart{{{0, 6}, {6, 6}, {6, 8}, {0, 8}}, {}},
                                                      PolygonPart{{{4, 6}, {10, 6}, {10, 8}, {4, 8}}, {}}}));
  const AnnotationIndex index(set);
  RasterGrid g;
  g.height = 9;
  g.width = 10;
  auto classes = two_classes();
  auto labels = rasterize(index, classes, g);
  EXPECT_EQ(labels[1][5].item<int64_t>(), 1) << "no priority: the later annotation (Tumor) wins the overlap";
  EXPECT_EQ(labels[1][1].item<int64_t>(), 2);
  EXPECT_EQ(labels[7][5].item<int64_t>(), 2) << "overlapping parts of one MultiPolygon stay filled";
  EXPECT_EQ(labels[5][5].item<int64_t>(), 0);
  classes.priority = {"Stroma", "Tumor"};
  labels = rasterize(index, classes, g);
  EXPECT_EQ(labels[1][5].item<int64_t>(), 2) << "Stroma listed first in class_priority wins";
  EXPECT_EQ(labels[1][8].item<int64_t>(), 1);
}

// Hand-drawn invalid polygons are repaired into what the annotator meant (GEOS MakeValid, "structure" method), then
// rasterised by the pixel-centre rule: compared pixel by pixel with the intended shapes, rasterised by brute force.
TEST(AnnotationRepair, InvalidPolygonsBecomeTheAreaTheAnnotatorDrew) {
  // Vertices off the lines through pixel centres, so that no centre lies exactly on an edge of either description.
  const std::string json = R"({"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"classification": {"name": "Tumor"}},
     "geometry": {"type": "Polygon", "coordinates": [[[2, 2], [12, 9], [12, 2], [2, 9], [2, 2]]]}},
    {"type": "Feature", "properties": {"classification": {"name": "Stroma"}},
     "geometry": {"type": "Polygon", "coordinates": [[[20, 4], [30, 4], [30, 14], [23, 14], [23, 0], [27, 0],
                                                     [27, 9], [20, 9], [20, 4]]]}},
    {"type": "Feature", "properties": {"classification": {"name": "Tumor"}},
     "geometry": {"type": "Polygon", "coordinates": [[[2, 16], [12, 16], [12, 26], [2, 26], [2, 16]],
                                                     [[7, 19], [17, 19], [17, 23], [7, 23], [7, 19]]]}},
    {"type": "Feature", "properties": {"classification": {"name": "Stroma"}},
     "geometry": {"type": "Polygon", "coordinates": [[[20, 20], [25, 20], [30, 20], [20, 20]]]}},
    {"type": "Feature", "properties": {"classification": {"name": "Stroma"}},
     "geometry": {"type": "Polygon", "coordinates": [[[20, 22], [30, 22], [30, 28], [20, 28], [20, 22]]]}}
  ]})";
  const auto set = parse(json);
  EXPECT_EQ(set->repaired, 4) << "bow-tie, self-overlapping lasso, hole past its shell, collinear ring";
  EXPECT_EQ(set->skipped_invalid, 1) << "the collinear ring has no area";
  ASSERT_EQ(set->annotations.size(), 4u);
  EXPECT_EQ(set->annotations[3].source_index, 4) << "annotations remember their feature index";
  ASSERT_EQ(set->annotations[3].parts.size(), 1u);
  EXPECT_EQ(set->annotations[3].parts[0].exterior.size(), 4u) << "a valid polygon is left as it was";

  // The intended shapes, each a union of simple polygons (minus a rectangle for the overhanging hole).
  const Ring tri_left{{2, 2}, {7, 5.5}, {2, 9}}, tri_right{{7, 5.5}, {12, 9}, {12, 2}};
  const Ring ell{{20, 4}, {30, 4}, {30, 14}, {23, 14}, {23, 9}, {20, 9}}, loop{{23, 0}, {27, 0}, {27, 9}, {23, 9}};
  const Ring shell{{2, 16}, {12, 16}, {12, 26}, {2, 26}}, hole{{7, 19}, {17, 19}, {17, 23}, {7, 23}};
  const Ring valid{{20, 22}, {30, 22}, {30, 28}, {20, 28}};
  auto in = [](const Ring& r, double x, double y) { return reference_inside(PolygonPart{r, {}}, x, y); };
  RasterGrid g;
  g.height = 30;
  g.width = 32;
  auto want = torch::zeros({g.height, g.width}, torch::kLong);
  for (int64_t i = 0; i < g.height; ++i) {
    for (int64_t j = 0; j < g.width; ++j) {
      const double x = g.centre_x(j), y = g.centre_y(i);
      if (in(tri_left, x, y) || in(tri_right, x, y)) want[i][j] = 1;
      if (in(ell, x, y) || in(loop, x, y)) want[i][j] = 2;  // parity alone would leave their overlap empty
      if (in(shell, x, y) && !in(hole, x, y)) want[i][j] = 1;  // parity alone would fill the hole's overhang
      if (in(valid, x, y)) want[i][j] = 2;
    }
  }
  const auto got = rasterize(AnnotationIndex(set), two_classes(), g);
  EXPECT_TRUE(torch::equal(got, want)) << got.ne(want).sum().item<int64_t>() << " pixels differ";
  EXPECT_EQ(got[7][25].item<int64_t>(), 2) << "the lasso's self-overlap stays filled";
  EXPECT_EQ(got[21][14].item<int64_t>(), 0) << "the hole's overhang past the shell stays empty";

  // ASAP files are repaired the same way.
  const auto asap = parse_asap_xml(R"(<ASAP_Annotations><Annotations>
    <Annotation Name="a" Type="Polygon" PartOfGroup="Tumor"><Coordinates>
      <Coordinate Order="0" X="2" Y="2"/><Coordinate Order="1" X="12" Y="9"/>
      <Coordinate Order="2" X="12" Y="2"/><Coordinate Order="3" X="2" Y="9"/>
    </Coordinates></Annotation></Annotations></ASAP_Annotations>)", "bowtie.xml");
  EXPECT_EQ(asap.repaired, 1);
  ASSERT_EQ(asap.annotations.size(), 1u);
  EXPECT_EQ(asap.annotations[0].parts.size(), 2u) << "the bow-tie becomes its two triangles";
}

// Pieces without holes (for ASAP XML) cover exactly the pixel centres of the polygon they were cut from.
TEST(PolygonGeometry, HoleFreePiecesCoverThePolygonsPixelsExactly) {
  std::mt19937_64 rng(11);
  PolygonGeometry geometry;
  for (int k = 0; k < 6; ++k) {
    std::vector<PolygonPart> parts{PolygonPart{star(rng, 60, 60, 50, 9 + k), {}}};
    for (int h = 0; h <= k % 3; ++h) {  // one to three holes, inside the star's inner radius
      parts[0].holes.push_back(star(rng, 45.3 + 14.1 * h, 52.7 + 6.2 * h, 6, 5));
    }
    geometry.make_valid(parts);  // random holes may overlap: the valid form is what a reader would hold
    for (const auto& part : parts) {
      const auto pieces = geometry.hole_free(part);
      if (!part.holes.empty()) EXPECT_GT(pieces.size(), 1u);
      auto whole = std::make_shared<AnnotationSet>(), cut = std::make_shared<AnnotationSet>();
      whole->annotations.push_back(annotation_of("Tumor", {part}));
      for (const auto& ring : pieces) cut->annotations.push_back(annotation_of("Tumor", {PolygonPart{ring, {}}}));
      for (const double ds : {1.0, 0.5, 2.0}) {
        RasterGrid g;
        g.downsample = ds;
        g.height = g.width = static_cast<int64_t>(std::ceil(130 / ds));
        const auto want = rasterize(AnnotationIndex(whole), two_classes(), g);
        const auto got = rasterize(AnnotationIndex(cut), two_classes(), g);
        ASSERT_TRUE(torch::equal(got, want)) << "star " << k << ", downsample " << ds << ": "
                                             << got.ne(want).sum().item<int64_t>() << " pixels differ";
        // No pixel is covered twice: the pieces' areas add up to the polygon's.
        int64_t twice = 0;
        auto count = torch::zeros({g.height, g.width}, torch::kLong);
        for (const auto& ring : pieces) {
          auto one = std::make_shared<AnnotationSet>();
          one->annotations.push_back(annotation_of("Tumor", {PolygonPart{ring, {}}}));
          count += rasterize(AnnotationIndex(one), two_classes(), g);
        }
        twice = count.gt(1).sum().item<int64_t>();
        EXPECT_EQ(twice, 0);
      }
    }
  }
}

TEST(AnnotationIndex, ARegionVisitsOnlyTheAnnotationsItMeets) {
  auto set = std::make_shared<AnnotationSet>();
  set->source = "grid";
  for (int y = 0; y < 40; ++y) {
    for (int x = 0; x < 40; ++x) {
      const double x0 = 100.0 * x, y0 = 100.0 * y;
      set->annotations.push_back(
          annotation_of("Tumor", {PolygonPart{{{x0, y0}, {x0 + 50, y0}, {x0 + 50, y0 + 50}, {x0, y0 + 50}}, {}}}));
    }
  }
  const AnnotationIndex index(set, 512);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> pos(-200, 4200), size(1, 900);
  for (int q = 0; q < 200; ++q) {
    const double x0 = pos(rng), y0 = pos(rng), x1 = x0 + size(rng), y1 = y0 + size(rng);
    std::vector<int64_t> want;
    for (int64_t k = 0; k < static_cast<int64_t>(set->annotations.size()); ++k) {
      const auto& b = set->annotations[static_cast<size_t>(k)].bounds;
      if (b[0] <= x1 && b[2] >= x0 && b[1] <= y1 && b[3] >= y0) want.push_back(k);
    }
    ASSERT_EQ(index.query(x0, y0, x1, y1), want) << "query " << q;
  }
  EXPECT_LE(index.query(0, 0, 250, 250).size(), 9u);
}

}  // namespace
}  // namespace spvit::data

// GEOS polygon operations (polygon_geometry.h) and the readers' repair of invalid polygons (annotations.h).
//
// Hand-drawn annotations are often invalid: a lasso that crosses itself, a brush stroke that overlaps its own start,
// a hole drawn a little past the outline. The pixel-centre rule alone would fill them by crossing parity, which turns
// a self-overlap into a hole and a hole's overhang into tissue. GEOS's MakeValid with the "structure" method gives
// what the annotator meant: the exterior rings' area united, the holes subtracted (a hole wholly outside its shell
// becomes an area of its own, as GEOS decides).
#include <geos_c.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/data/polygon_geometry.h"

namespace spvit::data {
namespace {

// One GEOS context, with its error messages kept (GEOS reports problems through a handler, not a return value).
class GeosContext {
 public:
  GeosContext() : handle_(GEOS_init_r()) {
    SPVIT_CHECK(handle_ != nullptr, "GEOS could not be initialised");
    GEOSContext_setErrorMessageHandler_r(handle_, &GeosContext::on_error, this);
  }
  ~GeosContext() { GEOS_finish_r(handle_); }
  GeosContext(const GeosContext&) = delete;
  GeosContext& operator=(const GeosContext&) = delete;
  GEOSContextHandle_t get() const { return handle_; }
  const std::string& last_error() const { return error_; }

 private:
  static void on_error(const char* message, void* self) { static_cast<GeosContext*>(self)->error_ = message; }
  GEOSContextHandle_t handle_;
  std::string error_;
};

struct GeometryDeleter {
  GEOSContextHandle_t h;
  void operator()(GEOSGeometry* g) const { GEOSGeom_destroy_r(h, g); }
};
using Geometry = std::unique_ptr<GEOSGeometry, GeometryDeleter>;

// A ring as a closed GEOS linear ring (the first vertex repeated at the end); nullptr when GEOS refuses it.
GEOSGeometry* linear_ring(GEOSContextHandle_t h, const Ring& ring) {
  const auto n = static_cast<unsigned>(ring.size());
  GEOSCoordSequence* seq = GEOSCoordSeq_create_r(h, n + 1, 2);
  if (!seq) return nullptr;
  for (unsigned k = 0; k <= n; ++k) {
    const auto& v = ring[k % n];
    GEOSCoordSeq_setXY_r(h, seq, k, v[0], v[1]);
  }
  return GEOSGeom_createLinearRing_r(h, seq);  // takes the sequence, also on failure
}

Geometry polygon_of(GEOSContextHandle_t h, const PolygonPart& part) {
  GEOSGeometry* shell = linear_ring(h, part.exterior);
  if (!shell) return Geometry(nullptr, GeometryDeleter{h});
  std::vector<GEOSGeometry*> holes;
  for (const auto& hole : part.holes) {
    if (GEOSGeometry* r = linear_ring(h, hole)) holes.push_back(r);
  }
  return Geometry(GEOSGeom_createPolygon_r(h, shell, holes.data(), static_cast<unsigned>(holes.size())),
                  GeometryDeleter{h});
}

// MakeValid's settings: the "structure" method, collapsed parts (lines, points) dropped.
struct MakeValidParams {
  explicit MakeValidParams(GEOSContextHandle_t handle) : h(handle), get(GEOSMakeValidParams_create_r(h)) {
    GEOSMakeValidParams_setMethod_r(h, get, GEOS_MAKE_VALID_STRUCTURE);
    GEOSMakeValidParams_setKeepCollapsed_r(h, get, 0);
  }
  ~MakeValidParams() { GEOSMakeValidParams_destroy_r(h, get); }
  MakeValidParams(const MakeValidParams&) = delete;
  MakeValidParams& operator=(const MakeValidParams&) = delete;
  GEOSContextHandle_t h;
  GEOSMakeValidParams* get;
};

Ring ring_of(GEOSContextHandle_t h, const GEOSGeometry* ring) {
  Ring out;
  const GEOSCoordSequence* seq = GEOSGeom_getCoordSeq_r(h, ring);
  unsigned n = 0;
  if (!seq || !GEOSCoordSeq_getSize_r(h, seq, &n)) return out;
  for (unsigned k = 0; k + 1 < n; ++k) {  // GEOS rings are closed: the last vertex repeats the first
    double x = 0, y = 0;
    GEOSCoordSeq_getXY_r(h, seq, k, &x, &y);
    out.push_back({x, y});
  }
  return out;
}

// The polygons of a valid geometry (polygons, multipolygons and collections of them; lines and points have no area).
void collect_polygons(GEOSContextHandle_t h, const GEOSGeometry* g, std::vector<PolygonPart>& out) {
  const int type = GEOSGeomTypeId_r(h, g);
  if (type == GEOS_POLYGON) {
    if (GEOSisEmpty_r(h, g) == 1) return;
    PolygonPart part;
    part.exterior = ring_of(h, GEOSGetExteriorRing_r(h, g));
    for (int k = 0, n = GEOSGetNumInteriorRings_r(h, g); k < n; ++k) {
      auto hole = ring_of(h, GEOSGetInteriorRingN_r(h, g, k));
      if (hole.size() >= 3) part.holes.push_back(std::move(hole));  // a collapsed hole has no area
    }
    if (part.exterior.size() >= 3) out.push_back(std::move(part));
  } else if (type == GEOS_MULTIPOLYGON || type == GEOS_GEOMETRYCOLLECTION) {
    for (int k = 0, n = GEOSGetNumGeometries_r(h, g); k < n; ++k) collect_polygons(h, GEOSGetGeometryN_r(h, g, k), out);
  }
}


}  // namespace

struct PolygonGeometry::Impl {
  GeosContext context;
  MakeValidParams params{context.get()};
};

PolygonGeometry::PolygonGeometry() : impl_(std::make_unique<Impl>()) {}
PolygonGeometry::~PolygonGeometry() = default;

int64_t PolygonGeometry::make_valid(std::vector<PolygonPart>& parts, std::string* first_reason) {
  GEOSContextHandle_t h = impl_->context.get();
  int64_t invalid = 0;
  std::vector<PolygonPart> out;
  for (auto& part : parts) {
    size_t vertices = part.exterior.size();
    for (const auto& hole : part.holes) vertices += hole.size();
    if (vertices > kRepairVertexLimit) {  // GEOS's repair of such a polygon can take minutes: left as drawn
      ++too_large_;
      out.push_back(std::move(part));
      continue;
    }
    Geometry g = polygon_of(h, part);
    if (g && GEOSisValid_r(h, g.get()) == 1) {
      out.push_back(std::move(part));
      continue;
    }
    std::string reason = impl_->context.last_error();
    if (g) {
      if (char* r = GEOSisValidReason_r(h, g.get())) {
        reason = r;
        GEOSFree_r(h, r);
      }
      if (!fix_rings_separately(part, out)) {
        Geometry valid(GEOSMakeValidWithParams_r(h, g.get(), impl_->params.get), GeometryDeleter{h});
        if (valid) collect_polygons(h, valid.get(), out);
      }
    }
    if (invalid++ == 0 && first_reason) *first_reason = reason.empty() ? "not a polygon" : reason;
  }
  parts = std::move(out);
  return invalid;
}

bool PolygonGeometry::fix_rings_separately(const PolygonPart& part, std::vector<PolygonPart>& out) {
  GEOSContextHandle_t h = impl_->context.get();
  auto fixed = [&](const Ring& ring) {  // the ring alone, made valid: the area it encloses, as polygons
    std::vector<PolygonPart> pieces;
    Geometry g = polygon_of(h, PolygonPart{ring, {}});
    if (!g) return pieces;
    if (GEOSisValid_r(h, g.get()) == 1) {
      pieces.push_back(PolygonPart{ring, {}});
      return pieces;
    }
    Geometry valid(GEOSMakeValidWithParams_r(h, g.get(), impl_->params.get), GeometryDeleter{h});
    if (valid) collect_polygons(h, valid.get(), pieces);
    return pieces;
  };
  std::vector<PolygonPart> shells = fixed(part.exterior);
  // Each hole goes to the shell piece that contains it (prepared geometries: indexed point-in-polygon queries).
  std::vector<Geometry> shell_geometries;
  std::vector<const GEOSPreparedGeometry*> prepared;
  for (const auto& s : shells) {
    shell_geometries.push_back(polygon_of(h, s));
    prepared.push_back(shell_geometries.back() ? GEOSPrepare_r(h, shell_geometries.back().get()) : nullptr);
  }
  bool placed_all = true;
  for (const auto& hole : part.holes) {
    for (auto& piece : fixed(hole)) {
      Geometry hole_geometry = polygon_of(h, piece);
      bool placed = false;
      for (size_t k = 0; k < shells.size() && hole_geometry && !placed; ++k) {
        if (prepared[k] && GEOSPreparedCovers_r(h, prepared[k], hole_geometry.get()) == 1) {
          shells[k].holes.push_back(std::move(piece.exterior));
          placed = true;
        }
      }
      placed_all = placed_all && placed;
    }
  }
  for (const auto* p : prepared) {
    if (p) GEOSPreparedGeom_destroy_r(h, p);
  }
  if (!placed_all) return false;  // a hole crossing its shell: the general repair
  for (auto& s : shells) {
    Geometry g = polygon_of(h, s);
    if (!g || GEOSisValid_r(h, g.get()) != 1) return false;  // holes overlapping each other: the general repair
  }
  for (auto& s : shells) out.push_back(std::move(s));
  return true;
}

std::vector<Ring> PolygonGeometry::hole_free(const PolygonPart& part) {
  if (part.holes.empty()) return {part.exterior};
  GEOSContextHandle_t h = impl_->context.get();
  Geometry g = polygon_of(h, part);
  SPVIT_CHECK(g != nullptr, "hole_free: not a polygon (", impl_->context.last_error(), ")");
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0, hx0 = 0, hx1 = 0;
  GEOSGeom_getXMin_r(h, g.get(), &x0);
  GEOSGeom_getYMin_r(h, g.get(), &y0);
  GEOSGeom_getXMax_r(h, g.get(), &x1);
  GEOSGeom_getYMax_r(h, g.get(), &y1);
  // Through the hole whose centre is the median of the holes' centres: every cut opens that hole and leaves about
  // half of the others on each side, so a polygon with h holes takes ~log2(h) rounds of cuts, not h (GEOS's overlay
  // of a polygon with thousands of holes is slow). A quarter pixel off the level-0 pixel centres where the hole is
  // wide enough, so that no centre depends on how GEOS rounds the vertices it makes on the cut.
  std::vector<std::pair<double, size_t>> centres;  // (x centre, hole)
  std::vector<std::pair<double, double>> spans;
  for (size_t k = 0; k < part.holes.size(); ++k) {
    double lo = part.holes[k][0][0], hi = lo;
    for (const auto& v : part.holes[k]) lo = std::min(lo, v[0]), hi = std::max(hi, v[0]);
    spans.emplace_back(lo, hi);
    centres.emplace_back((lo + hi) / 2, k);
  }
  std::nth_element(centres.begin(), centres.begin() + static_cast<std::ptrdiff_t>(centres.size() / 2), centres.end());
  const auto [mid, median] = centres[centres.size() / 2];
  hx0 = spans[median].first, hx1 = spans[median].second;
  double cut = std::floor(mid) + 0.25;
  if (!(cut > hx0 && cut < hx1)) cut = mid;
  std::vector<Ring> out;
  // GEOS's rectangle clipping runs in linear time (a general overlay places each of thousands of holes one by one,
  // far too slow for a tissue region with a hole per nucleus).
  for (const auto& [left, right] : {std::pair<double, double>{x0 - 1, cut}, std::pair<double, double>{cut, x1 + 1}}) {
    Geometry piece(GEOSClipByRect_r(h, g.get(), left, y0 - 1, right, y1 + 1), GeometryDeleter{h});
    if (!piece) {  // rectangle clipping refuses some invalid input (a polygon too large to repair): the general overlay
      Geometry side(GEOSGeom_createRectangle_r(h, left, y0 - 1, right, y1 + 1), GeometryDeleter{h});
      piece.reset(GEOSIntersection_r(h, g.get(), side.get()));
    }
    SPVIT_CHECK(piece != nullptr, "hole_free: GEOS could not cut a polygon (", impl_->context.last_error(), ")");
    std::vector<PolygonPart> pieces;
    collect_polygons(h, piece.get(), pieces);
    make_valid(pieces);  // rectangle clipping may leave a ring touching itself
    for (const auto& p : pieces) {
      for (auto& ring : hole_free(p)) out.push_back(std::move(ring));
    }
  }
  return out;
}

RepairReport repair_invalid_polygons(AnnotationSet& set) {
  RepairReport report;
  PolygonGeometry geometry;
  std::vector<Annotation> kept;
  kept.reserve(set.annotations.size());
  for (auto& a : set.annotations) {
    std::string reason;
    if (geometry.make_valid(a.parts, report.first_problem.empty() ? &reason : nullptr) > 0) {
      ++report.repaired;
      if (report.first_problem.empty()) {
        report.first_problem = "annotation " + std::to_string(a.source_index) + " ('" + a.class_name + "'): " + reason;
      }
    }
    if (a.parts.empty()) {
      ++report.dropped;
      continue;
    }
    a.update_bounds();
    kept.push_back(std::move(a));
  }
  set.annotations = std::move(kept);
  set.repaired += report.repaired;
  set.skipped_invalid += report.dropped;
  if (geometry.too_large() > 0) {
    log::warn("annotations '{}': {} polygon(s) of more than {} vertices not checked for validity (GEOS would take "
              "minutes): rasterised as drawn, by the crossing rule", set.source, geometry.too_large(),
              PolygonGeometry::kRepairVertexLimit);
  }
  if (report.repaired > 0) {
    log::warn("annotations '{}': {} invalid polygon(s) repaired with GEOS MakeValid, {} left without area and skipped "
              "(first: {})", set.source, report.repaired, report.dropped, report.first_problem);
  }
  return report;
}

}  // namespace spvit::data

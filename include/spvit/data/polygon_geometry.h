// Polygon geometry that the annotation readers and writers need and the pixel-centre rule alone does not give,
// done by GEOS (a Debian library): making invalid polygons valid, and cutting a polygon with holes into pieces
// without holes for formats that have none (ASAP XML).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spvit/data/annotations.h"

namespace spvit::data {

class PolygonGeometry {
 public:
  PolygonGeometry();
  ~PolygonGeometry();
  PolygonGeometry(const PolygonGeometry&) = delete;
  PolygonGeometry& operator=(const PolygonGeometry&) = delete;

  // Replaces every invalid part of `parts` (GEOS isValid) by the valid parts GEOS MakeValid makes of it with the
  // "structure" method: the area its exterior ring encloses, united where the ring overlaps itself, minus its holes
  // (also where a hole reaches past the shell); a part left without area disappears. Returns the number of invalid
  // parts; the first one's reason (GEOS's words and where) goes to `first_reason` when given.
  // Parts of more than kRepairVertexLimit vertices (shell and holes) are left as they are and counted in too_large():
  // GEOS's overlay of a region with thousands of holes (a hole per nucleus) takes minutes.
  int64_t make_valid(std::vector<PolygonPart>& parts, std::string* first_reason = nullptr);
  static constexpr size_t kRepairVertexLimit = 20000;
  int64_t too_large() const { return too_large_; }

  // `part` (valid) as pieces without holes that cover the same pixel centres: cut by the vertical line through the
  // middle of a hole, again until no piece has one. A centre on a cut belongs to the piece right of it (the
  // pixel-centre rule's tie), so the pieces never share a pixel and never miss one.
  std::vector<Ring> hole_free(const PolygonPart& part);

 private:
  // The fast repair of the usual case: the exterior ring and each hole made valid on their own, each hole placed in
  // the shell piece that contains it, all without an overlay (GEOS's overlay of a polygon with thousands of holes —
  // a tissue region with a hole per nucleus — takes minutes). Appends the result to `out` and returns true when it
  // is valid; false (nothing appended) when holes cross a shell or each other, which MakeValid then repairs.
  bool fix_rings_separately(const PolygonPart& part, std::vector<PolygonPart>& out);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t too_large_ = 0;
};

}  // namespace spvit::data

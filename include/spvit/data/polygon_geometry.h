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
  int64_t make_valid(std::vector<PolygonPart>& parts, std::string* first_reason = nullptr);

  // `part` (valid) as pieces without holes that cover the same pixel centres: cut by the vertical line through the
  // middle of a hole, again until no piece has one. A centre on a cut belongs to the piece right of it (the
  // pixel-centre rule's tie), so the pieces never share a pixel and never miss one.
  std::vector<Ring> hole_free(const PolygonPart& part);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spvit::data

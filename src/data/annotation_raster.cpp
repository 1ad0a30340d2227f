// The annotation index and the pixel-centre rasteriser (annotations.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "spvit/core/error.h"
#include "spvit/data/annotations.h"

namespace spvit::data {

// An edge of a ring with its vertices in ring order (the crossing's x is computed from them exactly as `crosses`
// does, so the scanline below and polygon_contains agree to the last bit) and its y extent [ylo, yhi): the rows
// whose centre y it crosses.
struct RasterEdge {
  std::array<double, 2> a, b;
  double ylo, yhi;
};

namespace {

// Every non-horizontal edge of a part's rings.
std::vector<RasterEdge> part_edges(const PolygonPart& part) {
  std::vector<RasterEdge> edges;
  auto add_ring = [&](const Ring& ring) {
    for (size_t k = 0, n = ring.size(); k < n; ++k) {
      const auto& a = ring[k];
      const auto& b = ring[(k + 1) % n];
      if (a[1] != b[1]) edges.push_back({a, b, std::min(a[1], b[1]), std::max(a[1], b[1])});
    }
  };
  add_ring(part.exterior);
  for (const auto& hole : part.holes) add_ring(hole);
  return edges;
}

}  // namespace

struct AnnotationIndex::EdgeBands {
  static constexpr size_t kMinEdges = 512;   // parts with fewer edges are scanned whole
  static constexpr double kEdgesPerBand = 64;
  double y0 = 0, height = 1;
  std::vector<std::vector<RasterEdge>> bands;      // band b: the edges meeting [y0 + b·height, y0 + (b+1)·height)

  explicit EdgeBands(std::vector<RasterEdge> edges) {
    double lo = edges[0].ylo, hi = edges[0].yhi;
    for (const auto& e : edges) lo = std::min(lo, e.ylo), hi = std::max(hi, e.yhi);
    y0 = lo;
    height = std::max(1.0, (hi - lo) * kEdgesPerBand / static_cast<double>(edges.size()));
    bands.resize(static_cast<size_t>((hi - lo) / height) + 1);
    for (const auto& e : edges) {
      for (size_t b = band(e.ylo); b <= band(e.yhi); ++b) bands[b].push_back(e);
    }
  }
  size_t band(double y) const {
    return static_cast<size_t>(std::clamp((y - y0) / height, 0.0, static_cast<double>(bands.size() - 1)));
  }
  // The edges that may span centres in [y_first, y_last], each once: an edge is taken from the band holding
  // max(its ylo, y_first), the first band of the range it appears in.
  void collect(double y_first, double y_last, std::vector<RasterEdge>& out) const {
    if (y_last < y0) return;
    for (size_t b = band(y_first); b <= band(y_last); ++b) {
      for (const auto& e : bands[b]) {
        if (e.yhi <= y_first || e.ylo > y_last) continue;
        if (band(std::max(e.ylo, y_first)) == b) out.push_back(e);
      }
    }
  }
};

AnnotationIndex::~AnnotationIndex() = default;

const AnnotationIndex::EdgeBands* AnnotationIndex::edge_bands(int64_t annotation, size_t part) const {
  const auto& parts = edge_bands_.at(static_cast<size_t>(annotation));
  return part < parts.size() ? parts[part].get() : nullptr;
}

namespace {

// Does the edge a -> b cross the horizontal line at `y` (one end at or below y, the other above)? Then `x` is where.
bool crosses(const std::array<double, 2>& a, const std::array<double, 2>& b, double y, double& x) {
  if ((a[1] <= y) == (b[1] <= y)) return false;
  x = a[0] + (y - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
  return true;
}

template <typename Fn>
void for_each_crossing(const PolygonPart& part, double y, Fn&& fn) {
  auto ring_crossings = [&](const Ring& ring) {
    for (size_t k = 0, n = ring.size(); k < n; ++k) {
      double x;
      if (crosses(ring[k], ring[(k + 1) % n], y, x)) fn(x);
    }
  };
  ring_crossings(part.exterior);
  for (const auto& hole : part.holes) ring_crossings(hole);
}

// First column j of `grid` whose centre is at or right of x (exactly by centre_x, whatever the rounding of the
// division); in [0, width].
int64_t first_column_at_or_right_of(const RasterGrid& grid, double x) {
  const double guess = std::ceil((x - grid.x0) / grid.downsample - 0.5);
  int64_t j = static_cast<int64_t>(std::clamp(guess, -1.0, static_cast<double>(grid.width) + 1.0));
  j = std::clamp<int64_t>(j, 0, grid.width);
  while (j > 0 && grid.centre_x(j - 1) >= x) --j;
  while (j < grid.width && grid.centre_x(j) < x) ++j;
  return j;
}

// Rows of `grid` whose centres may lie within [y0, y1] (a superset; rows outside a part have no crossings).
std::pair<int64_t, int64_t> rows_between(const RasterGrid& grid, double y0, double y1) {
  const double lo = std::floor((y0 - grid.y0) / grid.downsample - 0.5) - 1;
  const double hi = std::ceil((y1 - grid.y0) / grid.downsample) + 1;
  const auto h = static_cast<double>(grid.height);
  return {static_cast<int64_t>(std::clamp(lo, 0.0, h)), static_cast<int64_t>(std::clamp(hi, 0.0, h))};
}


// Paints `label` on the pixels of `grid` whose centres are inside `part` (rows [r0, r1)). A scanline over an edge
// table: each row looks only at the edges that span it, so a part of V vertices costs O(V log V + crossings) rather
// than rows × V (a tissue outline with thousands of holes over thousands of rows); with `bands`, only the edges near
// the rows are looked at (a few rows of a part of 10^5 edges).
void fill_part(const PolygonPart& part, const AnnotationIndex::EdgeBands* bands, const RasterGrid& grid, int64_t r0,
               int64_t r1, int64_t label, int64_t* out) {
  if (r0 >= r1) return;
  const double y_first = grid.centre_y(r0), y_last = grid.centre_y(r1 - 1);
  std::vector<RasterEdge> edges;
  if (bands) {
    bands->collect(y_first, y_last, edges);
  } else {
    for (const auto& e : part_edges(part)) {
      if (e.yhi > y_first && e.ylo <= y_last) edges.push_back(e);  // spans some of the rows' centres
    }
  }
  if (edges.empty()) return;
  std::sort(edges.begin(), edges.end(), [](const RasterEdge& p, const RasterEdge& q) { return p.ylo < q.ylo; });
  std::vector<const RasterEdge*> active;
  std::vector<double> xs;
  size_t next = 0;
  for (int64_t i = r0; i < r1; ++i) {
    const double y = grid.centre_y(i);
    // `crosses`: exactly one end at or below y, i.e. ylo <= y < yhi.
    while (next < edges.size() && edges[next].ylo <= y) active.push_back(&edges[next++]);
    active.erase(std::remove_if(active.begin(), active.end(), [&](const RasterEdge* e) { return e->yhi <= y; }),
                 active.end());
    xs.clear();
    for (const RasterEdge* e : active) {
      double x;
      if (crosses(e->a, e->b, y, x)) xs.push_back(x);
    }
    std::sort(xs.begin(), xs.end());
    // Inside iff an odd number of crossings lie at or left of the centre: the spans [xs[2k], xs[2k+1]).
    for (size_t k = 0; k + 1 < xs.size(); k += 2) {
      const int64_t a = first_column_at_or_right_of(grid, xs[k]), b = first_column_at_or_right_of(grid, xs[k + 1]);
      std::fill(out + i * grid.width + a, out + i * grid.width + std::max(a, b), label);
    }
  }
}

}  // namespace

void Annotation::update_bounds() {
  bounds = {std::numeric_limits<double>::max(), std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest(),
            std::numeric_limits<double>::lowest()};
  for (const auto& p : parts) {
    for (const auto& v : p.exterior) {
      bounds = {std::min(bounds[0], v[0]), std::min(bounds[1], v[1]), std::max(bounds[2], v[0]),
                std::max(bounds[3], v[1])};
    }
  }
}

bool polygon_contains(const PolygonPart& part, double x, double y) {
  int64_t at_or_left = 0;
  for_each_crossing(part, y, [&](double cx) { at_or_left += cx <= x ? 1 : 0; });
  return at_or_left % 2 == 1;
}

AnnotationIndex::AnnotationIndex(std::shared_ptr<const AnnotationSet> set, double cell_side)
    : set_(std::move(set)), cell_(cell_side) {
  SPVIT_CHECK(set_ != nullptr && cell_ > 0, "annotation index: no annotations or a cell side <= 0");
  const auto& a = set_->annotations;
  edge_bands_.resize(a.size());
  part_bounds_.resize(a.size());
  for (size_t k = 0; k < a.size(); ++k) {
    for (const auto& part : a[k].parts) {
      std::array<double, 4> b{std::numeric_limits<double>::max(), std::numeric_limits<double>::max(),
                              std::numeric_limits<double>::lowest(), std::numeric_limits<double>::lowest()};
      auto extend = [&](const Ring& ring) {
        for (const auto& v : ring) b = {std::min(b[0], v[0]), std::min(b[1], v[1]), std::max(b[2], v[0]), std::max(b[3], v[1])};
      };
      extend(part.exterior);
      for (const auto& hole : part.holes) extend(hole);  // an unrepaired hole may reach outside its exterior
      part_bounds_[k].push_back(b);
      auto edges = part_edges(part);
      edge_bands_[k].push_back(edges.size() >= EdgeBands::kMinEdges ? std::make_shared<const EdgeBands>(std::move(edges))
                                                                     : nullptr);
    }
  }
  if (a.empty()) return;
  double x0 = a[0].bounds[0], y0 = a[0].bounds[1], x1 = a[0].bounds[2], y1 = a[0].bounds[3];
  for (const auto& e : a) {
    x0 = std::min(x0, e.bounds[0]);
    y0 = std::min(y0, e.bounds[1]);
    x1 = std::max(x1, e.bounds[2]);
    y1 = std::max(y1, e.bounds[3]);
  }
  // Buckets at most ~16 per annotation (and 4096): annotations spread far apart get larger cells, not a huge grid.
  const auto most = std::max<int64_t>(4096, 16 * static_cast<int64_t>(a.size()));
  while (true) {
    cx0_ = static_cast<int64_t>(std::floor(x0 / cell_));
    cy0_ = static_cast<int64_t>(std::floor(y0 / cell_));
    columns_ = static_cast<int64_t>(std::floor(x1 / cell_)) - cx0_ + 1;
    rows_ = static_cast<int64_t>(std::floor(y1 / cell_)) - cy0_ + 1;
    if (columns_ * rows_ <= most) break;
    cell_ *= 2;
  }
  buckets_.resize(static_cast<size_t>(columns_ * rows_));
  for (int64_t k = 0; k < static_cast<int64_t>(a.size()); ++k) {
    const auto& b = a[static_cast<size_t>(k)].bounds;
    const int64_t c0 = static_cast<int64_t>(std::floor(b[0] / cell_)) - cx0_;
    const int64_t c1 = static_cast<int64_t>(std::floor(b[2] / cell_)) - cx0_;
    const int64_t r0 = static_cast<int64_t>(std::floor(b[1] / cell_)) - cy0_;
    const int64_t r1 = static_cast<int64_t>(std::floor(b[3] / cell_)) - cy0_;
    for (int64_t r = r0; r <= r1; ++r) {
      for (int64_t c = c0; c <= c1; ++c) buckets_[static_cast<size_t>(r * columns_ + c)].push_back(k);
    }
  }
}

std::vector<int64_t> AnnotationIndex::query(double x0, double y0, double x1, double y1) const {
  std::vector<int64_t> out;
  if (buckets_.empty() || x1 <= x0 || y1 <= y0) return out;
  const int64_t c0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(x0 / cell_)) - cx0_);
  const int64_t c1 = std::min<int64_t>(columns_ - 1, static_cast<int64_t>(std::floor(x1 / cell_)) - cx0_);
  const int64_t r0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(y0 / cell_)) - cy0_);
  const int64_t r1 = std::min<int64_t>(rows_ - 1, static_cast<int64_t>(std::floor(y1 / cell_)) - cy0_);
  for (int64_t r = r0; r <= r1; ++r) {
    for (int64_t c = c0; c <= c1; ++c) {
      for (int64_t k : buckets_[static_cast<size_t>(r * columns_ + c)]) {
        const auto& b = set_->annotations[static_cast<size_t>(k)].bounds;
        // Bounds are closed (a vertex on the region's edge may still decide a centre inside it).
        if (b[0] <= x1 && b[2] >= x0 && b[1] <= y1 && b[3] >= y0) out.push_back(k);
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

torch::Tensor rasterize(const AnnotationIndex& index, const ClassMap& classes, const RasterGrid& grid,
                        int64_t background) {
  SPVIT_CHECK(grid.height >= 0 && grid.width >= 0 && grid.downsample > 0, "rasterize: bad grid ", grid.height, "x",
              grid.width, " at downsample ", grid.downsample);
  auto labels = torch::full({grid.height, grid.width}, background, torch::kLong);
  const auto& set = index.set();
  const double x1 = grid.x0 + static_cast<double>(grid.width) * grid.downsample;
  const double y1 = grid.y0 + static_cast<double>(grid.height) * grid.downsample;
  auto ids = index.query(grid.x0, grid.y0, x1, y1);
  // Lowest priority first, file order within a priority: what is painted later wins where annotations overlap.
  std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) {
    return classes.rank_of(set.annotations[static_cast<size_t>(a)].class_name) >
           classes.rank_of(set.annotations[static_cast<size_t>(b)].class_name);
  });
  auto* out = labels.data_ptr<int64_t>();
  for (int64_t k : ids) {
    const auto& a = set.annotations[static_cast<size_t>(k)];
    const int64_t label = classes.label_of(a.class_name, set.source);
    // The parts of one annotation carry one label: painting each is their union.
    const auto& bounds = index.part_bounds(k);
    for (size_t p = 0; p < a.parts.size(); ++p) {
      const auto& b = bounds[p];
      if (b[0] > x1 || b[2] < grid.x0 || b[1] > y1 || b[3] < grid.y0) continue;  // meets no pixel of the grid
      const auto [r0, r1] = rows_between(grid, b[1], b[3]);
      fill_part(a.parts[p], index.edge_bands(k, p), grid, r0, r1, label, out);
    }
  }
  return labels;
}

}  // namespace spvit::data

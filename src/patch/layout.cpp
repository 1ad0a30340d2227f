// PatchLayout bookkeeping: Morton keys, validation and the token-range -> region mapping for sequence ranks.
#include "spvit/patch/layout.h"
#include "spvit/core/even_split.h"
#include "spvit/core/int_math.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "spvit/core/error.h"

namespace spvit::patch {

namespace {

// Spreads the low bits of v so that `stride - 1` zero bits separate consecutive ones (stride 2 or 3).
uint64_t spread_bits(uint64_t v, int stride) {
  uint64_t out = 0;
  const int bits = stride == 2 ? 32 : 21;
  for (int b = 0; b < bits; ++b) out |= ((v >> b) & 1u) << (b * stride);
  return out;
}


int64_t log2_exact(int64_t v) {
  int64_t k = 0;
  while ((int64_t{1} << k) < v) ++k;
  return k;
}

}  // namespace

const char* to_string(TokenOrder order) { return order == TokenOrder::ZOrder ? "zorder" : "raster"; }

TokenOrder parse_token_order(const std::string& name) {
  if (name == "zorder") return TokenOrder::ZOrder;
  if (name == "raster") return TokenOrder::Raster;
  SPVIT_THROW(ConfigError, "token order '", name, "' is not one of zorder, raster");
}

uint64_t morton_key(int spatial_dims, int64_t x, int64_t y, int64_t z) {
  // The per-step loop is simple and fast enough: keys are computed O(L) times, never per pixel.
  if (spatial_dims == 2) return spread_bits(static_cast<uint64_t>(x), 2) | (spread_bits(static_cast<uint64_t>(y), 2) << 1);
  return spread_bits(static_cast<uint64_t>(x), 3) | (spread_bits(static_cast<uint64_t>(y), 3) << 1) |
         (spread_bits(static_cast<uint64_t>(z), 3) << 2);
}

int64_t PatchLayout::num_leaves() const {
  return std::count_if(side.begin(), side.end(), [](int64_t s) { return s > 0; });
}

int64_t PatchLayout::num_pixels() const {
  return std::accumulate(image_size.begin(), image_size.end(), int64_t{1}, std::multiplies<int64_t>());
}

int64_t PatchLayout::image_extent(int axis) const {
  // image_size is in tensor order (.., H, W); coordinate axis 0 (x) is its last entry.
  return image_size.at(image_size.size() - 1 - static_cast<size_t>(axis));
}

int64_t PatchLayout::coord(int axis, int64_t i) const {
  const auto k = static_cast<size_t>(i);
  return axis == 0 ? x[k] : axis == 1 ? y[k] : z[k];
}

uint64_t PatchLayout::key(int64_t i) const {
  const auto k = static_cast<size_t>(i);
  const int64_t u = std::max<int64_t>(1, min_side);
  return morton_key(spatial_dims, x[k] / u, y[k] / u, spatial_dims == 3 ? z[k] / u : 0);
}

bool PatchLayout::intersects_image(int64_t i) const {
  if (empty_slot(i)) return false;
  for (int a = 0; a < spatial_dims; ++a) {
    if (coord(a, i) >= image_extent(a)) return false;
  }
  return true;
}

void PatchLayout::append(int64_t lx, int64_t ly, int64_t lz, int64_t lside) {
  x.push_back(lx);
  y.push_back(ly);
  if (spatial_dims == 3) z.push_back(lz);
  side.push_back(lside);
  level.push_back(log2_exact(root_side / lside));
}

void PatchLayout::append_empty(int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    x.push_back(0);
    y.push_back(0);
    if (spatial_dims == 3) z.push_back(0);
    side.push_back(0);
    level.push_back(-1);
  }
}

void PatchLayout::sort_zorder() {
  const int64_t leaves = num_leaves();
  std::vector<int64_t> idx(static_cast<size_t>(leaves));
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<uint64_t> keys(idx.size());
  for (size_t i = 0; i < idx.size(); ++i) keys[i] = key(static_cast<int64_t>(i));
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
  auto permute = [&](std::vector<int64_t>& v) {
    if (v.empty()) return;
    std::vector<int64_t> out(v);
    for (size_t i = 0; i < idx.size(); ++i) out[i] = v[static_cast<size_t>(idx[i])];
    v.swap(out);
  };
  for (auto* v : {&x, &y, &z, &side, &level}) permute(*v);
  order = TokenOrder::ZOrder;
}

void PatchLayout::validate() const {
  SPVIT_CHECK(spatial_dims == 2 || spatial_dims == 3, "layout: spatial_dims must be 2 or 3, got ", spatial_dims);
  if (!(patch >= 1 && root_side >= patch && root_side % patch == 0 && is_power_of_two(root_side / patch))) {
    SPVIT_THROW(DataError, "layout: root side ", root_side, " is not patch ", patch, " times a power of two");
  }
  if (root_side > (int64_t{1} << (spatial_dims == 2 ? 31 : 20))) {
    SPVIT_THROW(DataError, "layout: root side ", root_side, " is too large for 64-bit Morton keys");
  }
  if (min_side < 1) SPVIT_THROW(DataError, "layout: min_side must be >= 1, got ", min_side);
  if (static_cast<int>(image_size.size()) != spatial_dims) {
    SPVIT_THROW(DataError, "layout: image_size has ", image_size.size(), " entries for ", spatial_dims, "D");
  }
  for (int64_t e : image_size) {
    if (e < 1 || e > root_side) SPVIT_THROW(DataError, "layout: image extent ", e, " is outside [1, root side ", root_side, "]");
  }
  const size_t L = side.size();
  if (x.size() != L || y.size() != L || level.size() != L || z.size() != (spatial_dims == 3 ? L : 0)) {
    SPVIT_THROW(DataError, "layout: per-token vectors differ in length (x ", x.size(), ", y ", y.size(), ", z ",
                z.size(), ", side ", side.size(), ", level ", level.size(), ")");
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // (Morton key, key count) of each leaf
  bool seen_empty = false;
  for (size_t i = 0; i < L; ++i) {
    const auto t = static_cast<int64_t>(i);
    if (side[i] == 0) {
      seen_empty = true;
      bool zero = x[i] == 0 && y[i] == 0 && level[i] == -1 && (spatial_dims == 2 || z[i] == 0);
      if (!zero) SPVIT_THROW(DataError, "layout: empty slot ", i, " must have zero coordinates and level -1");
      continue;
    }
    if (seen_empty) SPVIT_THROW(DataError, "layout: leaf at token ", i, " follows an empty slot");
    const int64_t s = side[i];
    if (s < 0 || root_side % s != 0 || !is_power_of_two(root_side / s) || level[i] != log2_exact(root_side / s)) {
      SPVIT_THROW(DataError, "layout: token ", i, " has side ", s, " and level ", level[i], ", not S/2^level for S = ",
                  root_side);
    }
    if (s % min_side != 0 || !is_power_of_two(s / min_side)) {
      SPVIT_THROW(DataError, "layout: token ", i, " has side ", s, ", not min_side ", min_side, " times a power of two");
    }
    for (int a = 0; a < spatial_dims; ++a) {
      const int64_t c = coord(a, t);
      if (c < 0 || c % s != 0 || c + s > root_side) {
        SPVIT_THROW(DataError, "layout: token ", i, " coordinate ", c, " on axis ", a, " is not aligned to its side ", s,
                    " inside the root ", root_side);
      }
    }
    uint64_t volume = 1;  // in units of min_side, like the key
    for (int a = 0; a < spatial_dims; ++a) volume *= static_cast<uint64_t>(s / min_side);
    ranges.emplace_back(key(t), volume);
  }
  if (order == TokenOrder::ZOrder) {
    for (size_t i = 1; i < ranges.size(); ++i) {
      if (ranges[i - 1].first >= ranges[i].first) {
        SPVIT_THROW(DataError, "layout: tokens ", i - 1, " and ", i, " are not in Z-order");
      }
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    // Aligned squares (cubes) of power-of-two sides (in min_side units) are disjoint exactly when their Morton key
    // ranges are.
    if (ranges[i - 1].first + ranges[i - 1].second > ranges[i].first) {
      SPVIT_THROW(DataError, "layout: two leaves overlap (Morton keys ", ranges[i - 1].first, " and ", ranges[i].first, ")");
    }
  }
}

torch::Tensor PatchLayout::valid_mask() const {
  auto mask = torch::empty({length()}, torch::kBool);
  auto* m = mask.data_ptr<bool>();
  for (int64_t i = 0; i < length(); ++i) m[i] = !empty_slot(i);
  return mask;
}

int64_t root_side_for(int64_t patch, const std::vector<int64_t>& image_size) {
  SPVIT_CHECK(patch >= 1, "patch side must be >= 1, got ", patch);
  SPVIT_CHECK(!image_size.empty(), "root side of an image without dimensions");
  const int64_t largest = *std::max_element(image_size.begin(), image_size.end());
  int64_t side = patch;
  while (side < largest) side *= 2;
  return side;
}

int64_t Segment::box_volume() const {
  int64_t v = 1;
  for (size_t a = 0; a < lo.size(); ++a) v *= hi[a] - lo[a];
  return v;
}

std::vector<Segment> sequence_segments(const PatchLayout& layout, int num_ranks) {
  if (num_ranks < 1) SPVIT_THROW(ConfigError, "sequence segments need at least one rank, got ", num_ranks);
  const int64_t L = layout.length();
  const int d = layout.spatial_dims;
  std::vector<Segment> out(static_cast<size_t>(num_ranks));
  const auto counts = even_split(L, num_ranks);  // the sharding rule dist::SequenceShard uses too
  int64_t begin = 0;
  for (int r = 0; r < num_ranks; ++r) {
    const int64_t count = counts[static_cast<size_t>(r)];
    Segment& seg = out[static_cast<size_t>(r)];
    seg.begin = begin;
    seg.end = begin + count;
    seg.lo.assign(static_cast<size_t>(d), std::numeric_limits<int64_t>::max());
    seg.hi.assign(static_cast<size_t>(d), 0);
    bool any = false;
    for (int64_t i = seg.begin; i < seg.end; ++i) {
      if (!layout.intersects_image(i)) continue;
      any = true;
      const int64_t s = layout.side[static_cast<size_t>(i)];
      for (int a = 0; a < d; ++a) {
        const int64_t c = layout.coord(a, i);
        seg.lo[a] = std::min(seg.lo[a], c);
        seg.hi[a] = std::max(seg.hi[a], std::min(c + s, layout.image_extent(a)));
      }
    }
    if (!any) {
      seg.lo.assign(static_cast<size_t>(d), 0);
      seg.hi.assign(static_cast<size_t>(d), 0);
    }
    begin = seg.end;
  }
  return out;
}

}  // namespace spvit::patch

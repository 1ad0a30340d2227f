// PatchLayout: where each token of an image's sequence comes from (a square/cube leaf of the patch tree), in the
// order the tokens are fed to the model. Produced by every Patcher (uniform grid, quadtree, octree), consumed by
// extract/paste, by the positional encoding (via token_metadata) and by sequence sharding (via sequence_segments).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace spvit::patch {

// Token order. Adaptive layouts are always Z-ordered (a contiguous token range is then a compact image region);
// uniform grids may also be raster-ordered so that they equal the classic unfold and the learned grid table.
enum class TokenOrder { ZOrder, Raster };
const char* to_string(TokenOrder order);
TokenOrder parse_token_order(const std::string& name);  // "zorder" | "raster"

// Morton (Z-order) key of a corner (x, y[, z]) in pixels: bits interleaved x0 y0 [z0] x1 y1 [z1] ...
// Every aligned square of side 2^j owns the contiguous key range [key(corner), key(corner) + 4^j), so sorting
// disjoint leaves by the key of their corner is the Z-order traversal of the tree.
uint64_t morton_key(int spatial_dims, int64_t x, int64_t y, int64_t z = 0);

struct PatchLayout {
  int spatial_dims = 2;
  int64_t patch = 16;               // P: every token carries a P×P (P×P×P) tile per channel
  int64_t root_side = 0;            // S = P·2^k ≥ the largest image side; the tree's root covers [0, S)^d
  int64_t min_side = 0;             // smallest leaf side the tree may create (the score cell size)
  std::vector<int64_t> image_size;  // tensor order: (H, W) or (D, H, W); outside it is zero padding
  TokenOrder order = TokenOrder::ZOrder;
  std::string scorer;               // what produced the layout ("uniform", "edges", ...), for inspection only

  // One entry per token; all vectors have length L (z is empty in 2D). An empty slot (the sequence is longer
  // than the tree could be refined) has side 0, level -1 and coordinates 0; attention masks it out.
  std::vector<int64_t> x, y, z;     // leaf corner in pixels (x = column, y = row, z = slice)
  std::vector<int64_t> side;        // leaf side in pixels
  std::vector<int64_t> level;       // tree depth: side = S / 2^level

  int64_t length() const { return static_cast<int64_t>(side.size()); }
  bool empty_slot(int64_t i) const { return side[static_cast<size_t>(i)] == 0; }
  int64_t num_leaves() const;  // tokens that are real leaves (side > 0)
  int64_t num_pixels() const;  // pixels of the image (product of image_size)
  int64_t image_extent(int axis) const;  // extent along coordinate axis 0 = x, 1 = y, 2 = z
  int64_t coord(int axis, int64_t i) const;  // x, y or z of token i
  // Morton key of token i's corner in units of min_side (every corner is a multiple of it). Units rather than pixels
  // so that grids whose side is not a power of two (uniform P = 12) still get a true Z-order; for power-of-two
  // sides the order is the same as in pixels.
  uint64_t key(int64_t i) const;
  bool intersects_image(int64_t i) const;  // a real leaf with at least one in-image pixel

  void append(int64_t lx, int64_t ly, int64_t lz, int64_t lside);  // adds a leaf (level derived from root_side)
  void append_empty(int64_t count);
  void sort_zorder();  // stable sort of the leaves by Morton key; empty slots stay at the end

  // Throws DataError naming the first inconsistency: vector lengths, sides that are not S/2^k, misaligned or
  // out-of-root leaves, empty slots before leaves, Z-order violated, overlapping leaves.
  void validate() const;

  // [L] bool, true for real leaves (the encoder's key_valid mask).
  torch::Tensor valid_mask() const;
};

// Root side for patch P and an image: the smallest P·2^k (k ≥ 0) not smaller than the largest image side.
int64_t root_side_for(int64_t patch, const std::vector<int64_t>& image_size);

// A contiguous token range held by one sequence rank and the pixel box its leaves cover (clipped to the image), so
// that the rank can read only that region. Box bounds are in coordinate order (x, y[, z]), half-open [lo, hi).
struct Segment {
  int64_t begin = 0, end = 0;
  std::vector<int64_t> lo, hi;  // empty box (lo == hi) if the range holds no in-image leaf
  int64_t box_volume() const;
};

// Splits the L tokens over `num_ranks` like dist::SequenceShard::even (the first L % N ranks get one more token).
std::vector<Segment> sequence_segments(const PatchLayout& layout, int num_ranks);

// Serialisation, so that layouts can be cached and inspected. Loading validates the layout.
std::string to_json(const PatchLayout& layout, int indent = -1);
PatchLayout layout_from_json(const std::string& text);
void save_json(const PatchLayout& layout, const std::string& path);
PatchLayout load_json(const std::string& path);
void save_hdf5(const PatchLayout& layout, const std::string& path);
PatchLayout load_hdf5(const std::string& path);

}  // namespace spvit::patch

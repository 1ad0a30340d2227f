// A uniform token grid split into bands for a sequence group: the first grid dimension (token rows in 2D, token
// slices in 3D) is divided over the N_s ranks, so every rank's token segment is a band of whole rows. Then the
// segment is contiguous in raster order (what the encoder needs) AND a rectangle of pixels (what the decoder and
// the data reader need).
#pragma once
#include <torch/torch.h>

#include <vector>

#include "spvit/dist/sequence_shard.h"

namespace spvit::model {

struct UniformBands {
  std::vector<int64_t> grid;       // token grid: (rows, cols) or (slices, rows, cols)
  std::vector<int64_t> band_rows;  // first-dimension rows held by each rank
  int rank = 0;
  int64_t patch = 16;

  // Rows split as evenly as possible (the first rows % N_s ranks get one more). Throws if a rank would get none.
  static UniformBands even(std::vector<int64_t> image_shape, int64_t patch, int num_ranks, int rank);

  int64_t row_offset() const;                   // first token row of this rank
  int64_t rows() const { return band_rows.at(static_cast<size_t>(rank)); }
  int64_t tokens_per_row() const;               // product of grid[1:]
  int64_t num_tokens() const { return grid.at(0) * tokens_per_row(); }
  dist::SequenceShard shard() const;            // token counts per rank (rows × tokens_per_row)
  // Pixel box of this rank's band: begin/end per spatial dimension.
  std::vector<int64_t> pixel_begin() const;
  std::vector<int64_t> pixel_end() const;
  // Global raster indices of this rank's tokens, [rows * tokens_per_row] int64.
  torch::Tensor token_indices() const;
  // Side S of the square (cubic) root that the coordinates are normalised by: the smallest P·2^k not smaller than
  // the largest image side (patch::root_side_for). A property of the whole image, the same on every rank.
  int64_t root_side() const;
  // Coordinates of this rank's tokens for the coordinate positional encoding, [rows * tokens_per_row, d + 1]
  // float32, in raster order: centre x/S, y/S[, z/S] (x = column, y = row, z = slice), then log2(P)/log2(S).
  // The convention of patch::token_metadata for leaves of side P, so a uniform grid gets exactly the coordinates
  // of the equivalent uniform PatchLayout: one model definition (pos_encoding coords) serves both decoders. The
  // values are the global ones: a band's coordinates do not depend on how the rows are split.
  torch::Tensor token_coords() const;
};

// image band [B, C, R·P, W·P] (or [B, C, R·P, H·P, W·P]) -> tokens [B, R·W, C·P^d] in raster order.
torch::Tensor patchify(const torch::Tensor& image, int64_t patch);
// The inverse layout change for per-token features: [B, R·W(·H), F] -> [B, F, R, W] (or [B, F, R, H, W]).
torch::Tensor tokens_to_grid(const torch::Tensor& tokens, const std::vector<int64_t>& band_grid);

}  // namespace spvit::model

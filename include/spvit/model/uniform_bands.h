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
};

// image band [B, C, R·P, W·P] (or [B, C, R·P, H·P, W·P]) -> tokens [B, R·W, C·P^d] in raster order.
torch::Tensor patchify(const torch::Tensor& image, int64_t patch);
// The inverse layout change for per-token features: [B, R·W(·H), F] -> [B, F, R, W] (or [B, F, R, H, W]).
torch::Tensor tokens_to_grid(const torch::Tensor& tokens, const std::vector<int64_t>& band_grid);

}  // namespace spvit::model

#include "spvit/model/uniform_bands.h"

#include <algorithm>
#include <cmath>

#include "spvit/core/error.h"

namespace spvit::model {

UniformBands UniformBands::even(std::vector<int64_t> image_shape, int64_t patch, int num_ranks, int rank) {
  SPVIT_CHECK(image_shape.size() == 2 || image_shape.size() == 3, "uniform grid: image must be 2D or 3D");
  UniformBands b;
  b.patch = patch;
  b.rank = rank;
  for (auto side : image_shape) {
    SPVIT_CHECK(side > 0 && side % patch == 0, "uniform grid: image side ", side,
                " is not a positive multiple of the patch size ", patch);
    b.grid.push_back(side / patch);
  }
  SPVIT_CHECK(b.grid[0] >= num_ranks, "uniform grid: ", b.grid[0], " token rows cannot be split over ", num_ranks,
              " sequence ranks (each needs at least one row)");
  const auto split = dist::SequenceShard::even(b.grid[0], num_ranks, rank);
  b.band_rows = split.counts;
  return b;
}

int64_t UniformBands::row_offset() const {
  int64_t offset = 0;
  for (int r = 0; r < rank; ++r) offset += band_rows[static_cast<size_t>(r)];
  return offset;
}

int64_t UniformBands::tokens_per_row() const {
  int64_t n = 1;
  for (size_t d = 1; d < grid.size(); ++d) n *= grid[d];
  return n;
}

dist::SequenceShard UniformBands::shard() const {
  dist::SequenceShard s;
  s.length = num_tokens();
  s.rank = rank;
  for (auto rows : band_rows) s.counts.push_back(rows * tokens_per_row());
  return s;
}

std::vector<int64_t> UniformBands::pixel_begin() const {
  std::vector<int64_t> begin(grid.size(), 0);
  begin[0] = row_offset() * patch;
  return begin;
}

std::vector<int64_t> UniformBands::pixel_end() const {
  std::vector<int64_t> end;
  for (auto g : grid) end.push_back(g * patch);
  end[0] = (row_offset() + rows()) * patch;
  return end;
}

torch::Tensor UniformBands::token_indices() const {
  const int64_t first = row_offset() * tokens_per_row();
  return torch::arange(first, first + rows() * tokens_per_row(), torch::kLong);
}

int64_t UniformBands::root_side() const {
  const int64_t largest = *std::max_element(grid.begin(), grid.end()) * patch;
  int64_t side = patch;
  while (side < largest) side *= 2;
  return side;
}

torch::Tensor UniformBands::token_coords() const {
  // The arithmetic of patch::token_metadata, operation for operation (double, then rounded to float), so the two
  // agree bit for bit (tests/model/test_encoder_local.cpp compares them).
  const int d = static_cast<int>(grid.size());
  const int64_t n = rows() * tokens_per_row(), first_row = row_offset();
  const double S = static_cast<double>(root_side()), s = static_cast<double>(patch);
  const double log_root = std::max(1.0, std::log2(S));
  const auto log_side = static_cast<float>(std::log2(s) / log_root);
  auto coords = torch::empty({n, d + 1}, torch::kFloat32);
  auto* c = coords.data_ptr<float>();
  // Tensor order (slice, row, column) = grid[0..d); coordinate axis a = 0 (x, column), 1 (y, row), 2 (z, slice) is
  // tensor dimension d - 1 - a.
  std::vector<int64_t> at(static_cast<size_t>(d), 0);
  at[0] = first_row;
  for (int64_t i = 0; i < n; ++i) {
    for (int a = 0; a < d; ++a) {
      const double corner = static_cast<double>(at[static_cast<size_t>(d - 1 - a)] * patch);
      c[i * (d + 1) + a] = static_cast<float>((corner + s / 2) / S);
    }
    c[i * (d + 1) + d] = log_side;
    for (int k = d - 1; k >= 0; --k) {  // next token in raster order
      if (++at[static_cast<size_t>(k)] < grid[static_cast<size_t>(k)] || k == 0) break;
      at[static_cast<size_t>(k)] = 0;
    }
  }
  return coords;
}

torch::Tensor patchify(const torch::Tensor& image, int64_t P) {
  const int64_t B = image.size(0), C = image.size(1);
  if (image.dim() == 4) {
    const int64_t R = image.size(2) / P, W = image.size(3) / P;
    return image.reshape({B, C, R, P, W, P}).permute({0, 2, 4, 1, 3, 5}).reshape({B, R * W, C * P * P});
  }
  SPVIT_CHECK(image.dim() == 5, "patchify expects [B, C, H, W] or [B, C, D, H, W], got ", image.sizes());
  const int64_t R = image.size(2) / P, H = image.size(3) / P, W = image.size(4) / P;
  return image.reshape({B, C, R, P, H, P, W, P})
      .permute({0, 2, 4, 6, 1, 3, 5, 7})
      .reshape({B, R * H * W, C * P * P * P});
}

torch::Tensor tokens_to_grid(const torch::Tensor& tokens, const std::vector<int64_t>& band_grid) {
  std::vector<int64_t> shape{tokens.size(0), tokens.size(2)};
  shape.insert(shape.end(), band_grid.begin(), band_grid.end());
  return tokens.transpose(1, 2).reshape(shape);
}

}  // namespace spvit::model

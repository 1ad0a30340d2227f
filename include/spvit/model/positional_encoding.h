// Positional encodings that are correct for any segment offset: each rank encodes its own tokens from their
// global position, so a sharded sequence gets exactly the encodings the whole sequence would.
#pragma once
#include <torch/torch.h>

namespace spvit::model {

// Uniform grids: a learned table with one row per global token index (raster order).
class GridPositionalEncodingImpl : public torch::nn::Module {
 public:
  GridPositionalEncodingImpl(int64_t max_tokens, int64_t dim);
  // index: [L_s] int64 global token indices -> [L_s, E].
  torch::Tensor forward(const torch::Tensor& index);

 private:
  torch::Tensor table_;
};
TORCH_MODULE(GridPositionalEncoding);

// Adaptive layouts: a small MLP of each token's coordinates (normalised centre x, y[, z] and log2 side), because
// leaves of different sizes have no fixed table slot.
class CoordinatePositionalEncodingImpl : public torch::nn::Module {
 public:
  CoordinatePositionalEncodingImpl(int64_t coord_features, int64_t dim);
  // coords: [L_s, coord_features] -> [L_s, E].
  torch::Tensor forward(const torch::Tensor& coords);

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(CoordinatePositionalEncoding);

}  // namespace spvit::model

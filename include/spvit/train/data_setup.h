// Builds the datasets and the per-rank loader a configuration asks for, and the uniform-grid band each rank reads.
#pragma once
#include <memory>
#include <optional>

#include "spvit/core/config.h"
#include "spvit/data/dataset.h"
#include "spvit/data/loader.h"
#include "spvit/dist/process_grid.h"
#include "spvit/model/uniform_bands.h"

namespace spvit::train {

struct Datasets {
  std::shared_ptr<data::Dataset> train;
  std::shared_ptr<data::Dataset> val;  // null when there is no validation data
};

// Opens (or generates) the training and validation data and checks them against the model configuration
// (channels, 2D/3D, sizes divisible by the patch): a mismatch is a ConfigError naming both values.
Datasets open_datasets(const Config& config);

// The token-row band of a sample of spatial shape `shape` that this rank holds.
model::UniformBands bands_for(const std::vector<int64_t>& shape, const Config& config, const dist::ProcessGrid& grid);

// The pixel region of that band (what this rank reads from disk).
data::Region band_pixels(const model::UniformBands& bands);

// A loader over `dataset` for this rank: sharded over data groups, reading only this rank's band (unetr) or, for
// the tile decoder, delivering samples that carry this rank's layout tokens (data::token_sample).
std::unique_ptr<data::Loader> make_loader(std::shared_ptr<data::Dataset> dataset, const Config& config,
                                          const dist::ProcessGrid& grid, bool training);

// Batch -> model inputs: images [B, C, spatial...] (channels first) and masks [B, spatial...], each written once
// into its contiguous destination. `pinned` (CUDA runs): the destinations are page-locked host memory, so the
// trainer's copy to the GPU is asynchronous (`non_blocking`) and overlaps whatever the GPU is still doing.
std::pair<torch::Tensor, torch::Tensor> stack_batch(const std::vector<data::Sample>& samples, bool pinned = false);

}  // namespace spvit::train

// Training checkpoints: model, optimiser, step, loader position, RNG state and the configuration, written
// atomically (temporary file + rename) so an interrupted write never replaces the last good checkpoint.
#pragma once
#include <torch/torch.h>

#include <string>

#include "spvit/train/optim/optimizer.h"

namespace spvit::train {

struct TrainingPosition {
  int64_t step = 0;            // optimiser steps completed
  int64_t epoch = 0;           // loader epoch of the next batch
  int64_t batch_in_epoch = 0;  // batches of that epoch already consumed
};

// Writes on the calling rank (the trainer calls it on world rank 0; every rank holds the same replica).
void save_checkpoint(const std::string& path, torch::nn::Module& model, const Optimizer& optimizer,
                     const TrainingPosition& position, const std::string& config_yaml);

// Restores into an already built model and optimiser; returns the position. Throws DataError naming the file for a
// missing or unreadable checkpoint and for parameters whose names or shapes do not match the model.
TrainingPosition load_checkpoint(const std::string& path, torch::nn::Module& model, Optimizer* optimizer,
                                 std::string* config_yaml = nullptr);

// Only the configuration stored in a checkpoint (to rebuild the model before loading it).
std::string read_checkpoint_config(const std::string& path);

}  // namespace spvit::train

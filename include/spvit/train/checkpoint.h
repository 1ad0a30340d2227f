// Training checkpoints: model, optimiser, step, loader position, RNG state and the configuration, written
// atomically (temporary file + rename) so an interrupted write never replaces the last good checkpoint.
#pragma once
#include <torch/torch.h>

#include <string>

#include "spvit/train/optim/loss_scaler.h"
#include "spvit/train/optim/optimizer.h"

namespace spvit::train {

struct TrainingPosition {
  int64_t step = 0;            // optimiser steps completed
  int64_t epoch = 0;           // loader epoch of the next batch
  int64_t batch_in_epoch = 0;  // batches of that epoch already consumed
  int64_t world_size = 0;      // ranks of the run that wrote it (0: a checkpoint from before it was stored); with
                               // the configuration's grid.seq it gives the grid that wrote it
};

// Writes on the calling rank (the trainer calls it on world rank 0; every rank holds the same replica). Tensors are
// stored on the CPU whatever device trained them, so a checkpoint from a GPU run loads on a CPU-only machine. The
// loss scaler (fp16) is stored when given and enabled. `data_statistics`: what inference needs of the training data
// (data::Dataset::statistics_json: a NIfTI dataset's normalisation), stored when not empty.
void save_checkpoint(const std::string& path, torch::nn::Module& model, const Optimizer& optimizer,
                     const TrainingPosition& position, const std::string& config_yaml,
                     const LossScaler* scaler = nullptr, const std::string& data_statistics = {});

// The data statistics a checkpoint stores ("" when it has none). DataError for an unreadable file.
std::string read_checkpoint_data_statistics(const std::string& path);

// Restores into an already built model and optimiser (on whatever device they live); returns the position. Throws
// DataError naming the file for a missing or unreadable checkpoint and for parameters whose names or shapes do not
// match the model. An enabled `scaler` gets the stored scale (a checkpoint without one leaves it unchanged).
TrainingPosition load_checkpoint(const std::string& path, torch::nn::Module& model, Optimizer* optimizer,
                                 std::string* config_yaml = nullptr, LossScaler* scaler = nullptr);

// Only the configuration stored in a checkpoint (to rebuild the model before loading it).
std::string read_checkpoint_config(const std::string& path);

// The configuration and the position, without the tensors' use (to check a resume before building anything).
struct CheckpointInfo {
  std::string config_yaml;
  TrainingPosition position;
};
CheckpointInfo read_checkpoint_info(const std::string& path);

// train.keep_checkpoints > 1: after `checkpoint_path` (<dir>/checkpoint.pt) was written for `step`, keeps it also as
// <dir>/checkpoint-<step>.pt (a hard link: no second copy on disk; a copy where links are not supported) and
// deletes the older numbered ones beyond the `keep` newest. WriteError naming the file on failure.
void keep_numbered_checkpoint(const std::string& checkpoint_path, int64_t step, int64_t keep);

// One stored model parameter (on the CPU), or an undefined tensor when the checkpoint has none of that name; e.g.
// the head's bias gives the number of classes before the model is built. DataError for an unreadable file.
torch::Tensor read_checkpoint_parameter(const std::string& path, const std::string& name);

}  // namespace spvit::train

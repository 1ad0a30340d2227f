// A trained spvit model as a TilePredictor: the configuration and the weights come from a `spvit train`
// checkpoint (train::read_checkpoint_config / train::load_checkpoint, as `spvit eval` does).
#pragma once
#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/dist/communicator.h"
#include "spvit/infer/pipeline.h"
#include "spvit/infer/tiler.h"
#include "spvit/model/segmenter.h"

namespace spvit::infer {

struct LoadedModel {
  Config config;
  model::Segmenter model{nullptr};
  int64_t classes = 0;
  std::vector<std::string> class_names;  // index = class id
  std::vector<std::array<uint8_t, 3>> class_colours;  // index = class id (train::class_colour_table)
  torch::Device device{torch::kCPU};
  std::string data_statistics;  // what the training data left in the checkpoint (3D: NIfTI normalisation), or ""
};

// Rebuilds the model the checkpoint was trained with (its stored configuration plus `overrides`) and loads its
// weights. The number of classes is read from the stored head. Throws DataError for a missing or unreadable
// checkpoint or one whose weights do not fit its configuration, ConfigError for a model of the wrong kind:
// spatial_dims 2 (slides and images) needs a 2D RGB model, 3 (NIfTI volumes) a 3D one.
// `local_rank` picks the GPU with config.device auto/cuda (as in training).
LoadedModel load_model(const std::string& checkpoint, const std::vector<std::string>& overrides = {},
                       int local_rank = 0, int spatial_dims = 2);

// The tile size a model expects by default: the trained image size (data.size).
int64_t default_tile(const LoadedModel& model);

// For a model trained on slides (data.source: slides): run at its training resolution — data.mpp (the slide's level
// of that resolution, or resampled) or data.level — instead of level 0. Other models leave `options` as they are.
void use_training_resolution(const LoadedModel& model, const data::Slide& slide, InferOptions& options);

// The class names of a checkpoint's model, index = class id: a slide-trained model's data.classes (the first name
// of each id; ids no name maps to are class_<id>), synthetic pathology's names, else background, class_1, ...
std::vector<std::string> class_names_of(const Config& config, int64_t classes);

// Checks that `tile` (the side of a 2D tile or of a 3D window) suits the model (a multiple of the patch; with a learned grid position table, the trained
// size) and returns the predictor, softmax over classes: unetr models run forward_uniform on each batch of tiles;
// tile-decoder models plan each tile's layout with the checkpoint's patcher (uniform or adaptive, data.patcher),
// run forward_tiles and paste the token tiles back to pixels (data::read_token_sample, patch::paste_range).
// With `seq` (a sequence group of seq_size ranks, unetr only), every rank of the group is called with the same
// tiles, runs forward_uniform on its band of token rows (the same sequence-parallel model code as training) and the
// group all-gathers the probability rows, so every rank returns the whole tiles.
TilePredictor make_predictor(LoadedModel& model, int64_t tile, const dist::CommPtr& seq = nullptr, int seq_size = 1,
                             int seq_rank = 0);

}  // namespace spvit::infer

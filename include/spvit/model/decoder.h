// Decoders: encoder features -> logits, behind one interface, chosen by name from the decoder registry.
//
//   unetr : uniform grids. UNETR-style convolutional decoder on this rank's band of the token grid: skip features
//           from intermediate blocks and a conv stem on the raw image band, log2(P) ×2 upsampling stages, every
//           3×3 conv exchanging halo rows with the neighbouring bands. Output: this band's full-resolution logits.
//   tile  : any layout (adaptive included). Each token predicts a P×P (P×P×P) logit tile, pasted to pixels by the
//           patcher.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/core/registry.h"
#include "spvit/dist/communicator.h"
#include "spvit/model/uniform_bands.h"

namespace spvit::model {

// What a decoder is built from (the Segmenter's options without the encoder's).
struct DecoderOptions {
  int64_t dim = 0;            // encoder width E
  int64_t depth = 0;          // encoder blocks (the unetr skips tap blocks spread over them)
  int64_t channels = 3;
  int64_t patch = 16;
  int spatial_dims = 2;
  int64_t classes = 4;
  int64_t width = 16;         // unetr: channels of the full-resolution stage; ×2 per coarser stage
  int64_t chunk_rows = 0;     // unetr: decode this many token rows at a time, recomputed in backward (0: all)

  // The decoder a model configuration describes, for `classes` classes.
  static DecoderOptions from_config(const ModelConfig& model, int64_t classes);
};

// The decoder's input. features: the encoder outputs of this rank's tokens [B, L_s, E] at the blocks taps()
// names (shallow to deep), then the last block's. The uniform-band decoders also get this rank's image rows
// [B, C, R·P, ...], its band and the sequence communicator for halo exchanges (null: one rank).
struct DecoderInput {
  std::vector<torch::Tensor> features;
  torch::Tensor image_band;
  const UniformBands* bands = nullptr;
  dist::CommPtr comm;
};

class DecoderImpl : public torch::nn::Module {
 public:
  // Encoder blocks whose outputs forward() reads besides the last one, shallow to deep.
  virtual std::vector<int64_t> taps() const { return {}; }
  // unetr: this band's logits [B, classes, R·P, W·P(, ...)]; tile: logit tiles [B, L_s, classes, P, P(, P)].
  virtual torch::Tensor forward(const DecoderInput& input) = 0;
};
using Decoder = std::shared_ptr<DecoderImpl>;

// The decoder registry (core/registry.h): the one list of decoder names, selected by model.decoder.
struct DecoderEntry {
  std::string name;
  std::string summary;
  // true: decodes each rank's band of whole token rows of a uniform grid (image rows + halo exchange; the
  // Segmenter's forward_uniform); false: one logit tile per token of any layout (forward_tiles).
  bool uniform_bands = false;
  // The head's bias (its name relative to the decoder) tells a checkpoint's number of classes before the model is
  // built: classes_from_head_bias(its size, model.patch, model.spatial_dims).
  std::string head_bias;
  std::function<int64_t(int64_t bias_size, int64_t patch, int64_t spatial_dims)> classes_from_head_bias;
  std::function<Decoder(const DecoderOptions&)> make;
  // Decoder-specific configuration rules (ConfigError naming the key), beyond uniform_bands' own.
  std::function<void(const Config&)> validate;
  // Forward FLOPs per token (multiply-adds x 2), for the performance model (spvit plan, src/plan/step_model.cpp).
  std::function<double(const DecoderOptions&)> forward_flops_per_token;
};
const Registry<DecoderEntry>& decoders();

}  // namespace spvit::model

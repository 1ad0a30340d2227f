#include "spvit/model/decoder.h"

#include "spvit/core/error.h"
#include "spvit/core/int_math.h"
#include "spvit/model/tile_decoder.h"
#include "spvit/model/unetr_decoder.h"

namespace spvit::model {
namespace {

void check_unetr(const Config& c) {
  const auto& m = c.model;
  if (m.patch < 2 || !is_power_of_two(m.patch)) {
    SPVIT_THROW(ConfigError, "config key 'model.patch' = ", m.patch, " must be a power of two >= 2 for "
                "'model.decoder' = ", m.decoder, " (the decoder upsamples tokens to pixels in log2(patch) x2 stages)");
  }
}

void check_tile(const Config& c) {
  const auto& m = c.model;
  if (m.decoder_chunk_rows != 0) {
    SPVIT_THROW(ConfigError, "config key 'model.decoder_chunk_rows' = ", m.decoder_chunk_rows,
                " chunks the rows of the unetr decoder; 'model.decoder' = ", m.decoder,
                " has no rows to chunk: set it to 0");
  }
}

// A logit tile of P^d cells per class.
int64_t classes_of_tile_head(int64_t bias_size, int64_t patch, int64_t spatial_dims) {
  int64_t cells = 1;
  for (int64_t d = 0; d < spatial_dims; ++d) cells *= patch;
  return bias_size / cells;
}

}  // namespace

DecoderOptions DecoderOptions::from_config(const ModelConfig& m, int64_t classes) {
  DecoderOptions o;
  o.dim = m.dim;
  o.depth = m.depth;
  o.channels = m.channels;
  o.patch = m.patch;
  o.spatial_dims = static_cast<int>(m.spatial_dims);
  o.classes = classes;
  o.width = m.decoder_width;
  o.chunk_rows = m.decoder_chunk_rows;
  return o;
}

const Registry<DecoderEntry>& decoders() {
  static const Registry<DecoderEntry> registry(
      "decoder", "model.decoder",
      {{"unetr", "uniform grids: halo-exchange convolutional decoder (UNETR skips) on each rank's band of rows", true,
        "head.bias", [](int64_t bias_size, int64_t, int64_t) { return bias_size; },  // a channel per class
        [](const DecoderOptions& o) -> Decoder { return std::make_shared<UnetrDecoderImpl>(o); },
        check_unetr, UnetrDecoderImpl::forward_flops_per_token},
       {"tile", "any layout (adaptive included): each token predicts its P×P (P×P×P) logit tile", false,
        "tile_head.bias", classes_of_tile_head,
        [](const DecoderOptions& o) -> Decoder { return std::make_shared<TileDecoderImpl>(o); },
        check_tile, TileDecoderImpl::forward_flops_per_token}});
  return registry;
}

}  // namespace spvit::model

#include "spvit/model/segmenter.h"

#include "spvit/core/error.h"

namespace spvit::model {

SegmenterOptions SegmenterOptions::from_config(const ModelConfig& m, int64_t classes, const DistConfig& d) {
  SegmenterOptions o;
  o.encoder = EncoderOptions::from_config(m, d);
  o.channels = m.channels;
  o.patch = m.patch;
  o.spatial_dims = static_cast<int>(m.spatial_dims);
  o.classes = classes;
  o.decoder = m.decoder;
  o.decoder_width = m.decoder_width;
  o.decoder_chunk_rows = m.decoder_chunk_rows;
  return o;
}

SegmenterImpl::SegmenterImpl(const SegmenterOptions& o) : options_(o) {
  SPVIT_CHECK(o.classes >= 2, "segmentation needs at least 2 classes, got ", o.classes);
  decoder_entry_ = &decoders().at(o.decoder);
  encoder_ = register_module("encoder", ViTEncoder(o.encoder));
  DecoderOptions d;
  d.dim = o.encoder.dim;
  d.depth = o.encoder.depth;
  d.channels = o.channels;
  d.patch = o.patch;
  d.spatial_dims = o.spatial_dims;
  d.classes = o.classes;
  d.width = o.decoder_width;
  d.chunk_rows = o.decoder_chunk_rows;
  decoder_ = register_module("decoder", decoder_entry_->make(d));
}

torch::Tensor SegmenterImpl::forward_uniform(const torch::Tensor& image_band, const UniformBands& bands,
                                             const dist::CommPtr& seq) {
  SPVIT_CHECK(decoder_entry_->uniform_bands, "forward_uniform needs a band decoder; '", options_.decoder,
              "' decodes tokens (forward_tiles)");
  SPVIT_CHECK(image_band.dim() == 2 + options_.spatial_dims && image_band.size(1) == options_.channels,
              "image band must be [B, ", options_.channels, ", spatial...], got ", image_band.sizes());
  const auto in = uniform_encoder_input(image_band, bands, seq);
  return decoder_->forward({encoder_->forward_features(in.tokens, in.meta, in.seq, decoder_->taps()), image_band,
                            &bands, in.seq.comm});
}

SegmenterImpl::EncoderInput SegmenterImpl::uniform_encoder_input(const torch::Tensor& image_band,
                                                                 const UniformBands& bands,
                                                                 const dist::CommPtr& seq) const {
  // What the positional encoding reads: global token indices (grid table) or the global coordinates of this band's
  // tokens (coordinate MLP, in the tile path's convention: see UniformBands::token_coords).
  TokenMetadata meta{bands.token_indices(), {}};
  if (encoder_->options().pos_encoding == PositionalEncodingKind::Coords) {
    meta.coords = bands.token_coords().to(image_band.device());
  }
  return {patchify(image_band, options_.patch), std::move(meta), bands.shard().context(seq)};
}

torch::Tensor SegmenterImpl::forward_tiles(const torch::Tensor& tokens, const TokenMetadata& meta,
                                           const SequenceContext& seq) {
  SPVIT_CHECK(!decoder_entry_->uniform_bands, "forward_tiles needs a token decoder; '", options_.decoder,
              "' decodes bands of a uniform grid (forward_uniform)");
  return decoder_->forward({{encoder_->forward(tokens, meta, seq)}, {}, nullptr, seq.comm});
}

}  // namespace spvit::model

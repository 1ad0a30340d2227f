// The segmentation model: a ViT encoder and one decoder from the decoder registry (decoder.h), which never gathers
// the sequence.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "spvit/model/decoder.h"
#include "spvit/model/uniform_bands.h"
#include "spvit/model/vit_encoder.h"

namespace spvit::model {

struct SegmenterOptions {
  EncoderOptions encoder;
  int64_t channels = 3;
  int64_t patch = 16;          // power of two for the unetr decoder
  int spatial_dims = 2;
  int64_t classes = 4;
  std::string decoder = "unetr";  // a name of the decoder registry (decoders())
  int64_t decoder_width = 16;     // channels of the full-resolution stage; ×2 per coarser stage
  // unetr: > 0 decodes the band this many token rows at a time, each chunk checkpointed (recomputed in backward),
  // so the full-resolution activations of only one chunk are alive at a time. Same result as 0 (whole band).
  int64_t decoder_chunk_rows = 0;

  static SegmenterOptions from_config(const ModelConfig& model, int64_t classes, const DistConfig& dist = {});
};

class SegmenterImpl : public torch::nn::Module {
 public:
  explicit SegmenterImpl(const SegmenterOptions& options);

  // Decoders with uniform_bands (unetr). image_band: this rank's rows of the image, [B, C, R·P, W·P] (or
  // [B, C, R·P, H·P, W·P]). Returns this band's logits [B, classes, R·P, W·P(, ...)]. `seq` is the sequence
  // communicator (null: 1 rank). Every positional encoding works: the band supplies its tokens' global indices
  // (grid) or global coordinates (coords, as patch::token_metadata gives them for the same grid).
  torch::Tensor forward_uniform(const torch::Tensor& image_band, const UniformBands& bands, const dist::CommPtr& seq);

  // What forward_uniform gives the encoder for a band: its tokens, their positional metadata and the sequence context
  // (also used by `spvit bench step` to time the encoder alone on the same input).
  struct EncoderInput {
    torch::Tensor tokens;
    TokenMetadata meta;
    SequenceContext seq;
  };
  EncoderInput uniform_encoder_input(const torch::Tensor& image_band, const UniformBands& bands,
                                     const dist::CommPtr& seq) const;

  // Token decoders (tile). tokens [B, L_s, C·P^d] -> logit tiles [B, L_s, classes, P, P(, P)].
  torch::Tensor forward_tiles(const torch::Tensor& tokens, const TokenMetadata& meta, const SequenceContext& seq);

  const SegmenterOptions& options() const { return options_; }
  const DecoderEntry& decoder_entry() const { return *decoder_entry_; }
  ViTEncoder& encoder() { return encoder_; }

 private:
  SegmenterOptions options_;
  const DecoderEntry* decoder_entry_ = nullptr;  // the registry's entry for options_.decoder
  ViTEncoder encoder_{nullptr};
  Decoder decoder_;  // registered as "decoder": its parameters are "decoder.<name>" (see model/parameter_names.h)
};
TORCH_MODULE(Segmenter);

}  // namespace spvit::model

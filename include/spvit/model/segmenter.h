// The segmentation model: ViT encoder + a decoder that never gathers the sequence.
//
//   unetr : uniform grids. UNETR-style convolutional decoder on this rank's band of the token grid: skip features
//           from intermediate blocks and a conv stem on the raw image band, log2(P) ×2 upsampling stages, every
//           3×3 conv exchanging halo rows with the neighbouring bands. Output: this band's full-resolution logits.
//   tile  : adaptive layouts. Each token predicts a P×P (P×P×P) logit tile, pasted to pixels by the patcher.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "spvit/model/halo_conv.h"
#include "spvit/model/uniform_bands.h"
#include "spvit/model/vit_encoder.h"

namespace spvit::model {

struct SegmenterOptions {
  EncoderOptions encoder;
  int64_t channels = 3;
  int64_t patch = 16;          // power of two for the unetr decoder
  int spatial_dims = 2;
  int64_t classes = 4;
  std::string decoder = "unetr";  // unetr | tile
  int64_t decoder_width = 16;     // channels of the full-resolution stage; ×2 per coarser stage
  // unetr: > 0 decodes the band this many token rows at a time, each chunk checkpointed (recomputed in backward),
  // so the full-resolution activations of only one chunk are alive at a time. Same result as 0 (whole band).
  int64_t decoder_chunk_rows = 0;

  static SegmenterOptions from_config(const ModelConfig& model, int64_t classes);
};

class SegmenterImpl : public torch::nn::Module {
 public:
  explicit SegmenterImpl(const SegmenterOptions& options);

  // Uniform layouts. image_band: this rank's rows of the image, [B, C, R·P, W·P] (or [B, C, R·P, H·P, W·P]).
  // Returns this band's logits [B, classes, R·P, W·P(, ...)]. `seq` is the sequence communicator (null: 1 rank).
  // Every positional encoding works: the band supplies its tokens' global indices (grid) or global coordinates
  // (coords, as patch::token_metadata gives them for the same grid).
  torch::Tensor forward_uniform(const torch::Tensor& image_band, const UniformBands& bands, const dist::CommPtr& seq);

  // Adaptive layouts. tokens [B, L_s, C·P^d] -> logit tiles [B, L_s, classes, P, P(, P)].
  torch::Tensor forward_tiles(const torch::Tensor& tokens, const TokenMetadata& meta, const SequenceContext& seq);

  const SegmenterOptions& options() const { return options_; }
  ViTEncoder& encoder() { return encoder_; }
  // The unetr decoder's weights, in the order decode() reads them.
  std::vector<torch::Tensor> decoder_weights() const;

 private:
  // The unetr decoder as a function of its weights. grids: the encoder outputs it reads on the token grid of some
  // rows, [B, E, rows, cols(, ...)] each — the taps, shallow to deep, then the last block; image: the same rows of
  // the image. comm: halo exchange with the neighbouring bands (null: these rows are all there is, zero padding at
  // both ends). Returns the logits of those rows.
  torch::Tensor decode(const std::vector<torch::Tensor>& grids, const torch::Tensor& image, const dist::CommPtr& comm,
                       const std::vector<torch::Tensor>& weights) const;
  // decode() over chunks of options_.decoder_chunk_rows token rows, each with one token row of context per side
  // (from the neighbouring chunk or rank; none at the image borders), checkpointed when autograd is on.
  torch::Tensor decode_in_chunks(const std::vector<torch::Tensor>& grids, const torch::Tensor& image,
                                 const UniformBands& bands, const dist::CommPtr& comm) const;

  SegmenterOptions options_;
  ViTEncoder encoder_{nullptr};
  int64_t stages_ = 0;                   // log2(P)
  std::vector<int64_t> taps_;            // encoder blocks feeding the skips, shallow to deep
  std::vector<UpConv> up_;               // stage j: ×2 upsampling of the main path
  std::vector<std::vector<UpConv>> skip_up_;  // stage j < last: chain bringing a tap to the stage's resolution
  std::vector<HaloConv> fuse_;           // stage j: 3×3 conv over [main ‖ skip]
  HaloConv stem_{nullptr};               // 3×3 conv on the raw image (the full-resolution skip)
  HaloConv head_{nullptr};               // 1×1 conv to class logits
  torch::nn::Linear tile_head_{nullptr};
};
TORCH_MODULE(Segmenter);

}  // namespace spvit::model

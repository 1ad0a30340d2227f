// The unetr decoder (see decoder.h): on this rank's band of a uniform token grid, skip features from encoder blocks
// spread over the depth and a conv stem on the raw image band, log2(P) ×2 upsampling stages, every 3×3 convolution
// exchanging halo rows with the neighbouring bands — the sequence is never gathered.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "spvit/model/decoder.h"
#include "spvit/model/halo_conv.h"

namespace spvit::model {

class UnetrDecoderImpl : public DecoderImpl {
 public:
  explicit UnetrDecoderImpl(const DecoderOptions& options);
  std::vector<int64_t> taps() const override { return taps_; }
  torch::Tensor forward(const DecoderInput& input) override;
  // Forward FLOPs per token of these options (the performance model's count of the convolutions below).
  static double forward_flops_per_token(const DecoderOptions& options);

 private:
  // The weights in the order decode() reads them.
  std::vector<torch::Tensor> weights() const;
  // The decoder as a function of its weights. grids: the encoder outputs it reads on the token grid of some rows,
  // [B, E, rows, cols(, ...)] each — the taps, shallow to deep, then the last block; image: the same rows of the
  // image. comm: halo exchange with the neighbouring bands (null: these rows are all there is, zero padding at both
  // ends). Returns the logits of those rows.
  torch::Tensor decode(const std::vector<torch::Tensor>& grids, const torch::Tensor& image, const dist::CommPtr& comm,
                       const std::vector<torch::Tensor>& weights) const;
  // decode() over chunks of options_.chunk_rows token rows, each with one token row of context per side (from the
  // neighbouring chunk or rank; none at the image borders), checkpointed when autograd is on.
  torch::Tensor decode_in_chunks(const std::vector<torch::Tensor>& grids, const torch::Tensor& image,
                                 const UniformBands& bands, const dist::CommPtr& comm) const;

  DecoderOptions options_;
  int64_t stages_ = 0;                        // log2(P)
  std::vector<int64_t> taps_;                 // encoder blocks feeding the skips, shallow to deep
  std::vector<UpConv> up_;                    // stage j: ×2 upsampling of the main path
  std::vector<std::vector<UpConv>> skip_up_;  // stage j < last: chain bringing a tap to the stage's resolution
  std::vector<HaloConv> fuse_;                // stage j: 3×3 conv over [main ‖ skip]
  HaloConv stem_{nullptr};                    // 3×3 conv on the raw image (the full-resolution skip)
  HaloConv head_{nullptr};                    // 1×1 conv to class logits
};

}  // namespace spvit::model

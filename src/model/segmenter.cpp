#include "spvit/model/segmenter.h"

#include "spvit/core/error.h"

namespace spvit::model {

SegmenterOptions SegmenterOptions::from_config(const ModelConfig& m, int64_t classes) {
  SegmenterOptions o;
  o.encoder = EncoderOptions::from_config(m);
  o.channels = m.channels;
  o.patch = m.patch;
  o.spatial_dims = static_cast<int>(m.spatial_dims);
  o.classes = classes;
  o.decoder = m.decoder;
  o.decoder_width = m.decoder_width;
  return o;
}

SegmenterImpl::SegmenterImpl(const SegmenterOptions& o) : options_(o) {
  SPVIT_CHECK(o.classes >= 2, "segmentation needs at least 2 classes, got ", o.classes);
  SPVIT_CHECK(o.decoder == "unetr" || o.decoder == "tile", "decoder '", o.decoder, "' is not one of unetr, tile");
  encoder_ = register_module("encoder", ViTEncoder(o.encoder));
  const int64_t E = o.encoder.dim;
  int64_t tile_numel = o.classes;
  for (int d = 0; d < o.spatial_dims; ++d) tile_numel *= o.patch;
  if (o.decoder == "tile") {
    tile_head_ = register_module("tile_head", torch::nn::Linear(E, tile_numel));
    return;
  }
  SPVIT_CHECK(o.patch >= 2 && (o.patch & (o.patch - 1)) == 0, "the unetr decoder needs a power-of-two patch, got ",
              o.patch);
  while ((int64_t{1} << stages_) < o.patch) ++stages_;
  // Skips from blocks spread over the depth (UNETR uses blocks 3, 6, 9 of 12): deeper taps feed coarser stages.
  for (int64_t j = 1; j < stages_; ++j) {
    taps_.push_back(std::max<int64_t>(0, j * o.encoder.depth / stages_ - 1));
  }
  auto width = [&](int64_t stage) { return o.decoder_width << (stages_ - stage); };  // stage 1..stages_
  for (int64_t j = 1; j <= stages_; ++j) {
    const int64_t in = j == 1 ? E : width(j - 1);
    up_.push_back(register_module("up" + std::to_string(j), UpConv(in, width(j), o.spatial_dims)));
    std::vector<UpConv> chain;
    for (int64_t s = 0; j < stages_ && s < j; ++s) {
      chain.push_back(register_module("skip" + std::to_string(j) + "_" + std::to_string(s),
                                      UpConv(s == 0 ? E : width(j), width(j), o.spatial_dims)));
    }
    skip_up_.push_back(chain);
    fuse_.push_back(register_module("fuse" + std::to_string(j), HaloConv(2 * width(j), width(j), 3, o.spatial_dims)));
  }
  stem_ = register_module("stem", HaloConv(o.channels, width(stages_), 3, o.spatial_dims));
  head_ = register_module("head", HaloConv(width(stages_), o.classes, 1, o.spatial_dims));
}

torch::Tensor SegmenterImpl::forward_uniform(const torch::Tensor& image_band, const UniformBands& bands,
                                             const dist::CommPtr& seq) {
  SPVIT_CHECK(options_.decoder == "unetr", "forward_uniform needs the unetr decoder");
  SPVIT_CHECK(image_band.dim() == 2 + options_.spatial_dims && image_band.size(1) == options_.channels,
              "image band must be [B, ", options_.channels, ", spatial...], got ", image_band.sizes());
  auto tokens = patchify(image_band, options_.patch);
  SequenceContext ctx{bands.shard().num_ranks() > 1 ? seq : nullptr, bands.shard(), {}};
  TokenMetadata meta{bands.token_indices(), {}};
  auto features = encoder_->forward_features(tokens, meta, ctx, taps_);
  std::vector<int64_t> band_grid = bands.grid;
  band_grid[0] = bands.rows();
  auto x = tokens_to_grid(features.back(), band_grid);
  for (int64_t j = 1; j <= stages_; ++j) {
    x = up_[j - 1]->forward(x);
    torch::Tensor skip;
    if (j < stages_) {
      skip = tokens_to_grid(features[static_cast<size_t>(stages_ - j - 1)], band_grid);
      for (auto& up : skip_up_[j - 1]) skip = up->forward(skip);
    } else {
      skip = torch::gelu(stem_->forward(image_band, ctx.comm));
    }
    x = torch::gelu(fuse_[j - 1]->forward(torch::cat({x, skip}, 1), ctx.comm));
  }
  return head_->forward(x, ctx.comm);
}

torch::Tensor SegmenterImpl::forward_tiles(const torch::Tensor& tokens, const TokenMetadata& meta,
                                           const SequenceContext& seq) {
  SPVIT_CHECK(options_.decoder == "tile", "forward_tiles needs the tile decoder");
  auto features = encoder_->forward(tokens, meta, seq);
  std::vector<int64_t> shape{tokens.size(0), tokens.size(1), options_.classes};
  for (int d = 0; d < options_.spatial_dims; ++d) shape.push_back(options_.patch);
  return tile_head_->forward(features).view(shape);
}

}  // namespace spvit::model

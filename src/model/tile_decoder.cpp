#include "spvit/model/tile_decoder.h"

#include "spvit/core/error.h"

namespace spvit::model {

TileDecoderImpl::TileDecoderImpl(const DecoderOptions& o) : options_(o) {
  int64_t tile_numel = o.classes;
  for (int d = 0; d < o.spatial_dims; ++d) tile_numel *= o.patch;
  tile_head_ = register_module("tile_head", torch::nn::Linear(o.dim, tile_numel));
}

double TileDecoderImpl::forward_flops_per_token(const DecoderOptions& o) {
  double tile = static_cast<double>(o.classes);
  for (int d = 0; d < o.spatial_dims; ++d) tile *= static_cast<double>(o.patch);
  return 2.0 * static_cast<double>(o.dim) * tile;
}

torch::Tensor TileDecoderImpl::forward(const DecoderInput& in) {
  SPVIT_CHECK(!in.features.empty(), "the tile decoder needs the encoder's output");
  const auto& features = in.features.back();  // [B, L_s, E]
  std::vector<int64_t> shape{features.size(0), features.size(1), options_.classes};
  for (int d = 0; d < options_.spatial_dims; ++d) shape.push_back(options_.patch);
  return tile_head_->forward(features).view(shape);
}

}  // namespace spvit::model

#include "spvit/train/forward.h"

#include "spvit/patch/extract.h"

namespace spvit::train {
namespace {

torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device) {
  return t.defined() ? t.to(device) : t;  // metadata a positional encoding does not use stays undefined
}

}  // namespace

torch::Tensor forward_band(model::Segmenter& model, const torch::Tensor& images, const model::UniformBands& bands,
                           const dist::CommPtr& seq, const RunPrecision& precision, bool non_blocking) {
  const auto input = images.to(precision.device, precision.param_dtype, non_blocking);
  torch::Tensor logits;
  {
    ForwardPrecisionGuard autocast(precision);
    logits = model->forward_uniform(input, bands, seq);
  }
  return logits.to(precision.param_dtype);
}

torch::Tensor forward_tokens(model::Segmenter& model, const data::TokenSample& sample, const dist::CommPtr& seq,
                             int seq_size, int seq_index, const RunPrecision& precision) {
  const auto& dev = precision.device;
  const auto meta = patch::token_metadata(*sample.layout, sample.begin, sample.end);
  const bool has_empty_slots = sample.layout->num_leaves() < sample.layout->length();
  const auto ctx = dist::SequenceShard::even(sample.layout->length(), seq_size, seq_index)
                       .context(seq, has_empty_slots ? sample.layout->valid_mask().to(dev) : torch::Tensor());
  torch::Tensor tiles;
  {
    ForwardPrecisionGuard autocast(precision);
    tiles = model->forward_tiles(sample.tokens.to(dev, precision.param_dtype).unsqueeze(0),
                                 {to_device(meta.index, dev), to_device(meta.coords, dev)}, ctx);
  }
  return tiles.to(precision.param_dtype);
}

}  // namespace spvit::train

#include "spvit/train/model_loading.h"

#include "spvit/core/device.h"
#include "spvit/core/dtype.h"
#include "spvit/core/error.h"
#include "spvit/train/checkpoint.h"
#include "spvit/train/evaluation.h"

namespace spvit::train {
namespace {

// Classes, from the stored decoder head (its bias: see model::DecoderEntry::head_bias).
int64_t stored_classes(const std::string& path, const ModelConfig& m) {
  const auto& decoder = model::decoders().at(m.decoder);
  const std::string name = "decoder." + decoder.head_bias;
  const auto bias = read_checkpoint_parameter(path, name);
  if (!bias.defined()) {
    SPVIT_THROW(DataError, "checkpoint '", path, "' has no '", name, "' parameter: it was not written by spvit train "
                "for a ", m.decoder, " model");
  }
  return decoder.classes_from_head_bias(bias.size(0), m.patch, m.spatial_dims);
}

model::Segmenter build(const Config& config, int64_t classes) {
  return model::Segmenter(model::SegmenterOptions::from_config(config.model, classes, config.dist));
}

}  // namespace

model::Segmenter make_segmenter(const Config& config, int64_t classes) {
  torch::manual_seed(config.seed);  // identical initial parameters on every rank
  return build(config, classes);
}

LoadedSegmenter load_segmenter(const std::string& checkpoint, const std::vector<std::string>& overrides,
                               int local_rank) {
  return load_segmenter(checkpoint, config_for_evaluation(checkpoint, overrides), local_rank);
}

LoadedSegmenter load_segmenter(const std::string& checkpoint, const Config& config, int local_rank) {
  LoadedSegmenter out;
  out.config = config;
  out.classes = stored_classes(checkpoint, out.config.model);
  out.model = build(out.config, out.classes);  // no seeding: every weight comes from the checkpoint
  load_checkpoint(checkpoint, *out.model, nullptr);
  out.device = select_device(out.config.device, local_rank);
  out.model->to(out.device, parse_dtype(out.config.dtype));
  out.model->eval();
  return out;
}

}  // namespace spvit::train

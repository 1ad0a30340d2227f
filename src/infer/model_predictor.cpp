#include "spvit/infer/model_predictor.h"

#include <filesystem>

#include "spvit/core/device.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/data/sources.h"
#include "spvit/data/synthetic.h"
#include "spvit/train/class_colours.h"
#include "spvit/patch/extract.h"
#include "spvit/train/checkpoint.h"
#include "spvit/train/evaluation.h"
#include "spvit/train/forward.h"
#include "spvit/train/model_loading.h"
#include "spvit/train/precision.h"
#include "spvit/data/token_sampling.h"

namespace spvit::infer {
namespace {

// One tile (2D) or window (3D) as a one-sample dataset, so that the training code plans its layout and extracts its
// tokens (data::read_token_sample) exactly as for a training sample.
class TileDataset : public data::Dataset {
 public:
  TileDataset(torch::Tensor image, int64_t classes) : image_(std::move(image)), classes_(classes) {}
  int64_t size() const override { return 1; }
  int spatial_dims() const override { return static_cast<int>(image_.dim()) - 1; }
  int64_t channels() const override { return image_.size(-1); }
  int64_t num_classes() const override { return classes_; }
  std::vector<int64_t> spatial_shape(int64_t) const override {
    const auto s = image_.sizes();
    return std::vector<int64_t>(s.begin(), s.end() - 1);
  }
  data::Sample read(int64_t, const std::optional<data::Region>& region) const override {
    data::Sample s;
    s.image = image_;
    s.mask = torch::zeros(spatial_shape(0), torch::kLong);
    s.full_shape = spatial_shape(0);
    s.region = data::full_region(s.full_shape);
    s.id = "tile";
    return region ? data::crop(s, *region) : s;
  }

 private:
  torch::Tensor image_;  // [T, T, C] or [T, T, T, C] float32
  int64_t classes_;
};

// Tile decoder (adaptive or uniform layouts from data.patcher): each tile gets its own layout, so tiles are run one
// by one; the token tiles are pasted back to pixels (patch::paste_range), as spvit eval does.
torch::Tensor predict_tiles_decoder(model::Segmenter& model, const Config& config, int64_t classes,
                                    const torch::Tensor& batch, const train::RunPrecision& precision) {
  const auto sampling = data::LayoutSampling::from_config(config, 1, 0);
  const int64_t dims = batch.dim() - 2;
  std::vector<int64_t> channels_last, channels_first{dims};  // [C, spatial...] <-> [spatial..., C]
  for (int64_t d = 1; d <= dims; ++d) channels_last.push_back(d), channels_first.push_back(d - 1);
  channels_last.push_back(0);
  std::vector<torch::Tensor> out;
  for (int64_t b = 0; b < batch.size(0); ++b) {
    TileDataset tile(batch[b].permute(channels_last).contiguous(), classes);
    const auto sample = data::read_token_sample(tile, 0, data::AugmentDraw{}, sampling, /*keep_box=*/false);
    const auto& ts = data::token_sample(sample);
    const auto tiles = train::forward_tokens(model, ts, nullptr, 1, 0, precision);
    const int64_t n = ts.end - ts.begin;
    auto logits = patch::paste_range(tiles[0].reshape({n, -1}).to(torch::kCPU, torch::kFloat32), *ts.layout, ts.begin,
                                     ts.end, ts.lo, ts.hi);  // [T, T(, T), K]
    out.push_back(torch::softmax(logits.permute(channels_first), 0));
  }
  return torch::stack(out);
}

}  // namespace

LoadedModel load_model(const std::string& checkpoint, const std::vector<std::string>& overrides, int local_rank,
                       int spatial_dims) {
  auto loaded = train::load_segmenter(checkpoint, overrides, local_rank);  // bf16/fp16 -> fp32 where there is no GPU
  LoadedModel lm;
  lm.config = loaded.config;
  const auto& m = lm.config.model;
  if (spatial_dims == 3 && m.spatial_dims != 3) {
    SPVIT_THROW(ConfigError, "checkpoint '", checkpoint, "' holds a ", m.spatial_dims, "D model; NIfTI volumes need "
                "a 3D model (model.spatial_dims 3, trained on data.source: nifti)");
  }
  if (spatial_dims == 2 && (m.spatial_dims != 2 || m.channels != 3)) {
    SPVIT_THROW(ConfigError, "checkpoint '", checkpoint, "' holds a ", m.spatial_dims, "D model with ", m.channels,
                " channel(s); spvit infer needs a 2D RGB model (model.spatial_dims 2, model.channels 3)");
  }
  lm.classes = loaded.classes;
  lm.data_statistics = train::read_checkpoint_data_statistics(checkpoint);
  lm.model = loaded.model;
  lm.device = loaded.device;
  lm.class_names = class_names_of(lm.config, lm.classes);
  lm.class_colours = train::class_colour_table(lm.config.data, lm.classes);
  return lm;
}

std::vector<std::string> class_names_of(const Config& config, int64_t classes) {
  const auto& d = config.data;
  const bool generated = !data::dataset_sources().at(d.source).reads_files;
  if (generated && d.kind == "pathology" &&
      classes == static_cast<int64_t>(data::synthetic_pathology_classes().size())) {
    return data::synthetic_pathology_classes();
  }
  auto names = d.source == "slides" ? data::class_names_by_id(d, classes) : std::vector<std::string>(static_cast<size_t>(classes));
  for (int64_t c = 0; c < classes; ++c) {
    auto& name = names[static_cast<size_t>(c)];
    if (name.empty()) name = c == 0 ? "background" : "class_" + std::to_string(c);
  }
  return names;
}

void use_training_resolution(const LoadedModel& lm, const data::Slide& slide, InferOptions& o) {
  const auto& d = lm.config.data;
  if (d.source != "slides") return;
  if (d.mpp > 0) {
    if (!(slide.mpp_x() > 0)) {
      SPVIT_THROW(DataError, "the model was trained at ", d.mpp, " um/px, but slide '", slide.path(), "' has no "
                  "resolution (no openslide.mpp-x, no TIFF resolution tags): give --level or --mpp");
    }
    o.mpp = d.mpp;
    log::info("running at the training resolution {} um/px (the checkpoint's data.mpp; --mpp or --level to change)",
              d.mpp);
  } else {
    o.level = static_cast<int>(d.level);
    slide.level(o.level);  // a slide without that level: an error naming it
    log::info("running on level {} (the checkpoint's data.level; --mpp or --level to change)", d.level);
  }
}

int64_t default_tile(const LoadedModel& model) { return model.config.data.size; }

TilePredictor make_predictor(LoadedModel& lm, int64_t tile, const dist::CommPtr& seq, int seq_size, int seq_rank) {
  const auto& m = lm.config.model;
  if (tile % m.patch != 0) {
    SPVIT_THROW(ConfigError, "--tile ", tile, " must be a multiple of the model's patch size ", m.patch);
  }
  if (m.pos_encoding == "grid" && tile != lm.config.data.size) {
    SPVIT_THROW(ConfigError, "--tile ", tile, " differs from the trained image size ", lm.config.data.size,
                ": this model's learned grid position table fixes the tile size (use --tile ", lm.config.data.size, ")");
  }
  auto model = lm.model;
  // The run's precision (bf16/fp16 models run under autocast on the GPU), as in training and evaluation.
  const auto precision = train::RunPrecision::from_config(lm.config, lm.device);
  if (!model->decoder_entry().uniform_bands) {
    if (seq_size > 1) {
      SPVIT_THROW(ConfigError, "--seq ", seq_size, ": sequence-parallel tiles need a band decoder model; this "
                  "checkpoint uses the ", m.decoder, " decoder (run it with --seq 1)");
    }
    const Config config = lm.config;
    const int64_t classes = lm.classes;
    return [model, config, classes, precision](const torch::Tensor& rgb) mutable {
      torch::NoGradGuard no_grad;
      return predict_tiles_decoder(model, config, classes, rgb, precision);
    };
  }
  const auto dims = static_cast<size_t>(m.spatial_dims);
  const auto bands = model::UniformBands::even(std::vector<int64_t>(dims, tile), m.patch, seq_size, seq_rank);
  const int64_t P = m.patch;
  // [B, C, R, ...] <-> [R, B, C, ...]: the gather concatenates the ranks' rows along the first dimension.
  std::vector<int64_t> rows_first{2, 0, 1}, rows_back{1, 2, 0};
  for (int64_t d = 3; d < static_cast<int64_t>(dims) + 2; ++d) rows_first.push_back(d), rows_back.push_back(d);
  return [model, bands, seq, seq_size, P, precision, rows_first, rows_back](const torch::Tensor& rgb) mutable {
    torch::NoGradGuard no_grad;
    if (seq_size == 1) {
      return torch::softmax(train::forward_band(model, rgb, bands, nullptr, precision), 1)
          .to(torch::kCPU, torch::kFloat32);
    }
    // This rank's band of pixel rows; the group's bands are gathered back along the rows.
    auto band = rgb.narrow(2, bands.row_offset() * P, bands.rows() * P).contiguous();
    auto probs = torch::softmax(train::forward_band(model, band, bands, seq, precision), 1)
                     .to(torch::kCPU, torch::kFloat32);
    std::vector<int64_t> rows;
    for (auto r : bands.band_rows) rows.push_back(r * P);
    auto gathered = dist::all_gather_rows(*seq, probs.permute(rows_first).contiguous(), rows);  // [T, B, C, T(, T)]
    return gathered.permute(rows_back).contiguous();
  };
}

}  // namespace spvit::infer

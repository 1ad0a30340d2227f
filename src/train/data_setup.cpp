#include "spvit/train/data_setup.h"

#include "spvit/core/error.h"
#include "spvit/data/sources.h"
#include "spvit/model/decoder.h"

namespace spvit::train {

Datasets open_datasets(const Config& c) {
  Datasets out;
  // Validation samples come from a different seed, so they are never training samples.
  const auto& source = data::dataset_sources().at(c.data.source);
  DataConfig d = c.data;
  if (d.cache_dir.empty()) d.cache_dir = c.train.out_dir + "/cache";
  out.train = source.open(d, d.path, "train", d.train_samples, c.seed);
  if (source.manifest_splits && d.val_path.empty()) {
    if (d.val_samples > 0) out.val = source.open(d, d.path, "val", d.val_samples, c.seed + 7919);
  } else if (source.reads_files ? !d.val_path.empty() && (!source.manifest_splits || d.val_samples > 0)
                                 : d.val_samples > 0) {
    out.val = source.open(d, d.val_path, "val", d.val_samples, c.seed + 7919);
  }
  const auto& decoder = model::decoders().at(c.model.decoder);
  for (const auto& ds : {out.train, out.val}) {
    if (!ds) continue;
    if (ds->channels() != c.model.channels) {
      SPVIT_THROW(ConfigError, "config key 'model.channels' = ", c.model.channels, " but the data has ",
                  ds->channels(), " channel(s) (", ds->describe(), ")");
    }
    if (ds->spatial_dims() != c.model.spatial_dims) {
      SPVIT_THROW(ConfigError, "config key 'model.spatial_dims' = ", c.model.spatial_dims, " but the data is ",
                  ds->spatial_dims(), "D (", ds->describe(), ")");
    }
    // The unetr decoder's bands are whole tokens; layouts for the tile decoder pad the image to their root instead.
    for (int64_t side : decoder.uniform_bands ? ds->spatial_shape(0) : std::vector<int64_t>{}) {
      if (side % c.model.patch != 0) {
        SPVIT_THROW(ConfigError, "sample side ", side, " of ", ds->describe(),
                    " is not a multiple of 'model.patch' = ", c.model.patch);
      }
    }
  }
  if (out.val && out.val->num_classes() != out.train->num_classes()) {
    SPVIT_THROW(ConfigError, "training data has ", out.train->num_classes(), " classes but validation data has ",
                out.val->num_classes());
  }
  return out;
}

model::UniformBands bands_for(const std::vector<int64_t>& shape, const Config& c, const dist::ProcessGrid& grid) {
  return model::UniformBands::even(shape, c.model.patch, grid.seq_size(), grid.seq_index());
}

data::Region band_pixels(const model::UniformBands& bands) { return {bands.pixel_begin(), bands.pixel_end()}; }

std::unique_ptr<data::Loader> make_loader(std::shared_ptr<data::Dataset> dataset, const Config& c,
                                          const dist::ProcessGrid& grid, bool training) {
  auto o = data::LoaderOptions::from_config(c, grid.data_index(), grid.data_size(), training);
  if (!model::decoders().at(c.model.decoder).uniform_bands) {
    // Layout tokens: every rank plans the sample's layout (the same on the group) and keeps its own tokens.
    o.tokens = data::LayoutSampling::from_config(c, grid.seq_size(), grid.seq_index());
    return std::make_unique<data::Loader>(std::move(dataset), o);
  }
  auto region = [c, &grid](int64_t, const std::vector<int64_t>& shape) -> std::optional<data::Region> {
    return band_pixels(bands_for(shape, c, grid));
  };
  return std::make_unique<data::Loader>(std::move(dataset), o, region);
}

std::pair<torch::Tensor, torch::Tensor> stack_batch(const std::vector<data::Sample>& samples, bool pinned) {
  SPVIT_CHECK(!samples.empty(), "empty batch");
  const auto& first = samples[0];
  for (const auto& s : samples) {
    SPVIT_CHECK(s.full_shape == first.full_shape && s.image.sizes() == first.image.sizes(), "a batch mixes sample shapes ",
                data::shape_string(s.full_shape), " and ", data::shape_string(first.full_shape),
                ": use train.batch_size = 1 for data of varying size");
  }
  // [spatial..., C] -> [C, spatial...]
  const int64_t dims = first.image.dim();
  std::vector<int64_t> order{dims - 1};
  for (int64_t d = 0; d + 1 < dims; ++d) order.push_back(d);
  std::vector<int64_t> image_shape{static_cast<int64_t>(samples.size())}, mask_shape = image_shape;
  for (auto d : order) image_shape.push_back(first.image.size(d));
  for (auto side : first.mask.sizes()) mask_shape.push_back(side);
  // The model's types (float32 in [0, 1], int64), converted while copying: 8-bit samples (slides) stay 8-bit until here.
  auto images = torch::empty(image_shape, torch::TensorOptions(torch::kFloat32).pinned_memory(pinned));
  auto masks = torch::empty(mask_shape, torch::TensorOptions(torch::kLong).pinned_memory(pinned));
  for (size_t b = 0; b < samples.size(); ++b) {
    auto image = images[static_cast<int64_t>(b)];
    image.copy_(samples[b].image.permute(order));
    if (samples[b].image.scalar_type() == torch::kUInt8) image.div_(255.0);
    masks[static_cast<int64_t>(b)].copy_(samples[b].mask);
  }
  return {images, masks};
}

}  // namespace spvit::train

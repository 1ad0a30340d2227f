#include "spvit/train/evaluation.h"

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "spvit/build_info.h"
#include "spvit/core/atomic_file.h"
#include "spvit/dist/output_agreement.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/patch/extract.h"
#include "spvit/patch/patcher.h"
#include "spvit/train/checkpoint.h"
#include "spvit/train/config_check.h"
#include "spvit/train/class_colours.h"
#include "spvit/train/data_setup.h"
#include "spvit/train/forward.h"
#include "spvit/train/precision.h"
#include "spvit/data/token_sampling.h"
#if SPVIT_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace spvit::train {
namespace {

// Writes image | ground truth | prediction side by side (2D; the middle slice of 3D volumes), classes coloured.
void write_overlay(const std::string& path, const torch::Tensor& image, const torch::Tensor& truth,
                   const torch::Tensor& prediction) {
#if SPVIT_HAVE_OPENCV
  auto img = image, gt = truth, pr = prediction;  // [C, spatial...], [spatial...]
  if (gt.dim() == 3) {
    const int64_t mid = gt.size(0) / 2;
    img = img.select(1, mid), gt = gt.select(0, mid), pr = pr.select(0, mid);
  }
  auto rgb = img.size(0) >= 3 ? img.narrow(0, 0, 3) : img.narrow(0, 0, 1).expand({3, -1, -1});
  rgb = (rgb.clamp(0, 1) * 255).to(torch::kUInt8).permute({1, 2, 0}).flip({2}).contiguous();  // RGB -> BGR
  const auto palette_size = static_cast<int64_t>(kClassColoursRgb.size());
  auto colour = [&](const torch::Tensor& labels) {
    auto lut = torch::zeros({palette_size, 3}, torch::kUInt8);  // BGR rows, as OpenCV writes them
    for (int64_t k = 0; k < palette_size; ++k) {
      for (int c = 0; c < 3; ++c) lut[k][2 - c] = class_colour_rgb(k)[static_cast<size_t>(c)];
    }
    auto mixed = rgb.to(torch::kFloat) * 0.45 +
                 lut.index_select(0, labels.flatten().remainder(palette_size))
                         .view({labels.size(0), labels.size(1), 3}).to(torch::kFloat) * 0.55;
    return mixed.to(torch::kUInt8);
  };
  auto panel = torch::cat({rgb, colour(gt), colour(pr)}, 1).contiguous();
  cv::Mat mat(static_cast<int>(panel.size(0)), static_cast<int>(panel.size(1)), CV_8UC3, panel.data_ptr());
  std::vector<uchar> png;
  SPVIT_CHECK(cv::imencode(".png", mat, png), "cannot encode overlay PNG");
  write_bytes_atomically(path, png.data(), png.size());
#else
  (void)image, (void)truth, (void)prediction;
  log::warn("this build has no OpenCV: overlay {} not written", path);
#endif
}

// The same, recording a write failure in `write_error` (the first one) instead of throwing.
void write_overlay(const std::string& path, const torch::Tensor& image, const torch::Tensor& truth,
                   const torch::Tensor& prediction, std::string& write_error) {
  try {
    write_overlay(path, image, truth, prediction);
  } catch (const WriteError& e) {
    if (write_error.empty()) write_error = e.what();
  }
}

// The whole of a per-pixel quantity from each sequence rank's box (tensor order `region` of `box`, trailing
// dimensions kept), for overlays: every pixel lies in exactly one rank's leaves (`cover`), so a sum assembles it.
torch::Tensor assemble(const torch::Tensor& box, const torch::Tensor& cover, const data::Region& region,
                       const std::vector<int64_t>& full_shape, const std::vector<int64_t>& trailing,
                       dist::Communicator& seq) {
  auto sizes = full_shape;
  sizes.insert(sizes.end(), trailing.begin(), trailing.end());
  auto full = torch::zeros(sizes, torch::kFloat64);
  if (box.defined() && box.numel() > 0) {
    auto dst = full;
    for (int k = 0; k < region.dims(); ++k) dst = dst.narrow(k, region.begin[k], region.extent(k));
    auto c = cover.to(torch::kFloat64);
    while (c.dim() < box.dim()) c = c.unsqueeze(-1);
    dst.copy_(box.to(torch::kFloat64) * c);
  }
  seq.all_reduce(full, dist::ReduceOp::Sum)->wait();
  return full;
}

// Uniform grid + unetr decoder: each sequence rank reads and decodes its band.
void evaluate_band(model::Segmenter& model, const data::Dataset& dataset, int64_t i, const Config& config,
                   const RunPrecision& precision, const dist::ProcessGrid& grid, const EvalOptions& options,
                   SegmentationCounts& total, std::string& write_error) {
  const auto shape = dataset.spatial_shape(i);
  const auto bands = bands_for(shape, config, grid);
  const auto sample = dataset.read(i, band_pixels(bands));
  auto [image, mask] = stack_batch({sample});
  image = image.to(precision.param_dtype);
  // The counts and overlays are assembled on the CPU.
  const auto logits = forward_band(model, image, bands, grid.seq(), precision).to(torch::kCPU);
  total.add(count_segmentation(logits, mask, dataset.num_classes()));
  if (!options.overlay_dir.empty() && i < options.overlays) {
    // Only for the overlay: the band predictions (labels, not logits) are gathered on the group's first rank.
    auto labels = logits.argmax(1)[0];
    auto rows_of = [&](const torch::Tensor& t) {
      std::vector<int64_t> rows;
      for (auto r : bands.band_rows) rows.push_back(r * config.model.patch);
      return dist::all_gather_rows(*grid.seq(), t.contiguous(), rows);
    };
    auto full_pred = rows_of(labels);
    auto full_mask = rows_of(mask[0]);
    auto full_image = rows_of(image[0].transpose(0, 1)).transpose(0, 1);
    if (grid.seq_index() == 0) {
      write_overlay(options.overlay_dir + "/" + sample.id + "_overlay.png", full_image, full_mask, full_pred,
                    write_error);
    }
  }
}

// Layout tokens + tile decoder: each sequence rank decodes its tokens and pastes their tiles into its pixel box (or
// leaf by leaf, below); the pixels its leaves cover are counted (each pixel by exactly one rank).
void evaluate_tiles(model::Segmenter& model, const data::Dataset& dataset, int64_t i, const data::LayoutSampling& sampling,
                    const RunPrecision& precision, const dist::ProcessGrid& grid, const EvalOptions& options,
                    SegmentationCounts& total, std::string& write_error) {
  const auto dtype = precision.param_dtype;
  // The rank's pixel box at full resolution is kept for an overlay, or where the dataset cannot read a leaf on its
  // own; otherwise (slides) labels are read leaf by leaf, so a 65536² sample's box (gigapixels: its pasted logits
  // alone would be K·4 bytes per pixel) is never held. Both count the same pixels the same way: each leaf's tile
  // pasted on its own (patch::paste_range) against the leaf's labels.
  const bool overlay = !options.overlay_dir.empty() && i < options.overlays;
  // Leaf by leaf only for adaptive layouts (read_layout_tokens reads those leaf by leaf too): a uniform layout's
  // many small leaves are cheaper as one box read.
  bool leaf_reads = !overlay && dataset.has_scaled_reads() && patch::patchers().at(sampling.patcher.kind).adaptive;
  auto sample = data::read_token_sample(dataset, i, data::AugmentDraw{}, sampling, /*keep_box=*/!leaf_reads);
  const auto* layout = data::token_sample(sample).layout.get();
  const auto shape = dataset.spatial_shape(i);
  if (leaf_reads && (layout->root_side != shape.at(0) || layout->root_side != shape.at(1))) {  // padded layout
    sample = data::read_layout_tokens(dataset, i, data::AugmentDraw{}, data::token_sample(sample).layout, sampling,
                                      /*keep_box=*/true);
    leaf_reads = false;
  }
  const auto& ts = data::token_sample(sample);
  const auto tiles =
      forward_tokens(model, ts, grid.seq(), grid.seq_size(), grid.seq_index(), precision).to(torch::kCPU);
  const int64_t n = ts.end - ts.begin, K = dataset.num_classes();
  int64_t tile = 1;
  for (int d = 0; d < ts.layout->spatial_dims; ++d) tile *= ts.layout->patch;
  torch::Tensor labels, cover;
  if (leaf_reads) {
    for (int64_t k = 0; k < n; ++k) {
      const int64_t t = ts.begin + k;
      if (ts.layout->side[static_cast<size_t>(t)] == 0) continue;  // an empty slot covers no pixel
      const auto leaf = data::read_leaf(dataset, i, data::AugmentDraw{}, *ts.layout, t);
      SPVIT_CHECK(leaf.has_value(), "evaluation: leaf ", t, " of sample ", i, " cannot be read on its own");
      const int64_t x = ts.layout->x[static_cast<size_t>(t)], y = ts.layout->y[static_cast<size_t>(t)];
      const int64_t s = ts.layout->side[static_cast<size_t>(t)];
      const auto logits = patch::paste_range(tiles[0][k].reshape({1, -1}), *ts.layout, t, t + 1, {x, y}, {x + s, y + s});
      total.add(count_segmentation(logits.argmax(-1), data::model_mask(leaf->mask), K));
    }
  } else if (sample.mask.defined()) {
    auto logits = patch::paste_range(tiles[0].reshape({n, -1}), *ts.layout, ts.begin, ts.end, ts.lo, ts.hi);
    labels = logits.argmax(-1);
    cover = patch::paste_range(torch::ones({n, tile}, dtype), *ts.layout, ts.begin, ts.end, ts.lo,
                               ts.hi).select(-1, 0) > 0.5;
    total.add(count_segmentation(labels, sample.mask, K, cover));
  }
  if (overlay) {
    const auto& full = sample.full_shape;
    auto full_pred = assemble(labels, cover, sample.region, full, {}, *grid.seq()).to(torch::kLong);
    auto full_mask = assemble(sample.mask, cover, sample.region, full, {}, *grid.seq()).to(torch::kLong);
    auto full_image = assemble(sample.image, cover, sample.region, full, {dataset.channels()}, *grid.seq());
    if (grid.seq_index() == 0) {
      std::vector<int64_t> channels_first{full_image.dim() - 1};
      for (int64_t d = 0; d + 1 < full_image.dim(); ++d) channels_first.push_back(d);
      write_overlay(options.overlay_dir + "/" + sample.id + "_overlay.png",
                    full_image.permute(channels_first).to(torch::kFloat32), full_mask, full_pred, write_error);
    }
  }
}

}  // namespace

SegmentationCounts evaluate(model::Segmenter& model, const data::Dataset& dataset, const Config& config,
                            const dist::ProcessGrid& grid, const EvalOptions& options) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t n = options.max_samples < 0 ? dataset.size() : std::min(options.max_samples, dataset.size());
  SegmentationCounts total;
  total.tp = torch::zeros({dataset.num_classes()}, torch::kFloat64);
  total.fp = total.tp.clone();
  total.fn = total.tp.clone();
  const auto sampling = data::LayoutSampling::from_config(config, grid.seq_size(), grid.seq_index());
  const auto precision = RunPrecision::from_config(config, model->parameters()[0].device());
  // An overlay that cannot be written (disk full) must not leave the other ranks waiting in a collective: the
  // writer records the error, evaluation goes on, and all ranks agree on it at the end.
  std::string write_error;
  auto zero = [&] {
    SegmentationCounts c;
    c.tp = torch::zeros({dataset.num_classes()}, torch::kFloat64);
    c.fp = c.tp.clone();
    c.fn = c.tp.clone();
    return c;
  };
  // The groups of all n samples, in first-seen order: the same list on every rank, for the all-reduces below.
  std::vector<std::string> groups;
  if (options.per_group) {
    options.per_group->clear();
    for (int64_t i = 0; i < n; ++i) {
      const std::string g = dataset.sample_group(i);
      if (!g.empty() && !options.per_group->count(g)) groups.push_back(g), (*options.per_group)[g] = zero();
    }
  }
  // Data group d evaluates samples d, d + N_d, ...; its sequence ranks each take their part of the sample.
  for (int64_t i = grid.data_index(); i < n; i += grid.data_size()) {
    SegmentationCounts one = zero();
    if (model->decoder_entry().uniform_bands) {
      evaluate_band(model, dataset, i, config, precision, grid, options, one, write_error);
    } else {
      evaluate_tiles(model, dataset, i, sampling, precision, grid, options, one, write_error);
    }
    total.add(one);
    if (!groups.empty()) options.per_group->at(dataset.sample_group(i)).add(one);
  }
  total.all_reduce(*grid.world());
  for (const auto& g : groups) options.per_group->at(g).all_reduce(*grid.world());
  dist::agree_on_write_errors(grid.world(), write_error);
  model->train();
  return total;
}

Config config_for_evaluation(const std::string& checkpoint, const std::vector<std::string>& overrides) {
  const std::string yaml = read_checkpoint_config(checkpoint);
  std::vector<std::string> all;
  // A model trained in bf16/fp16 on a GPU is evaluated in fp32 where there is no GPU: the checkpoint holds its
  // fp32 master weights, so nothing is lost. The user's --set still has the last word.
  const auto trained = YAML::Load(yaml)["train"]["precision"];
  if (trained && trained.IsScalar() && trained.as<std::string>() != "fp32" && !torch::cuda::is_available()) {
    log::info("checkpoint '{}' was trained with train.precision={}; no GPU here, evaluating in fp32", checkpoint,
              trained.as<std::string>());
    all.push_back("train.precision=fp32");
  }
  all.insert(all.end(), overrides.begin(), overrides.end());
  return parse_checked_config(yaml, all);
}

std::string metrics_json(const SegmentationCounts& counts, int64_t samples,
                         const std::map<std::string, SegmentationCounts>& groups) {
  auto metrics = [](const SegmentationCounts& c) {
    nlohmann::json j;
    j["dice_per_class"] = c.dice();
    j["iou_per_class"] = c.iou();
    j["mean_dice_foreground"] = c.mean_dice();
    j["pixel_accuracy"] = c.pixel_accuracy();
    return j;
  };
  nlohmann::json j = metrics(counts);
  j["samples"] = samples;
  for (const auto& [name, c] : groups) j["per_group"][name] = metrics(c);
  return j.dump(2) + "\n";
}

}  // namespace spvit::train

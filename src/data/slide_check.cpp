#include "spvit/data/slide_check.h"

#include <algorithm>
#include <cmath>

#include "spvit/core/error.h"
#include "spvit/data/annotations.h"
#include "spvit/data/label_mask.h"
#include "spvit/data/slide_dataset.h"
#include "spvit/data/sources.h"

namespace spvit::data {
namespace {

constexpr int64_t kFractionSide = 512;  // class fractions are counted on a raster of this larger side

// Label fractions 0..K-1 (then ignored, last) and the names of labels 0..K-1 of `labels` (int64, -1 = ignored).
void count_labels(const DataConfig& d, const ClassMap& classes, const torch::Tensor& labels, SlideCheck& c) {
  int64_t max_id = 0;
  for (const auto& [n, id] : classes.ids) max_id = std::max(max_id, id);
  const auto counts = torch::bincount(labels.flatten().add(1), {}, max_id + 2).to(torch::kFloat64);  // -1 -> 0
  const double total = static_cast<double>(std::max<int64_t>(1, labels.numel()));
  for (int64_t k = 0; k <= max_id; ++k) c.label_fractions.push_back(counts[k + 1].item<double>() / total);
  c.label_names = class_names_by_id(d, max_id + 1);
  c.label_names[0] = "background";
  for (int64_t k = 1; k <= max_id; ++k) {
    if (c.label_names[static_cast<size_t>(k)].empty()) c.label_names[static_cast<size_t>(k)] = "label " + std::to_string(k);
  }
  c.label_fractions.push_back(counts[0].item<double>() / total);
}

// A label mask: its size against the slide, the values it holds (on its overview) and whether data.classes names
// them, the class fractions.
void check_label_mask(const DataConfig& d, const ClassMap& classes, SlideCheck& c, int64_t level0_width,
                      int64_t level0_height) {
  const LabelMask mask(c.annotation, level0_width, level0_height, d.mask_downsample);  // DataError: caller
  c.mask_width = mask.width(), c.mask_height = mask.height(), c.mask_downsample = mask.downsample();
  const auto [values, ds] = mask.overview(kFractionSide);
  const auto histogram = torch::bincount(values.flatten().to(torch::kLong), {}, 256);
  const auto table = LabelMask::value_labels(classes, d.unannotated == "ignore" ? ClassMap::kIgnore : 0);
  std::string unknown;
  for (int v = 0; v < 256; ++v) {
    if (histogram[v].item<int64_t>() == 0) continue;
    ++c.class_counts[std::to_string(v)];
    if (table[static_cast<size_t>(v)] == LabelMask::kNoClass) unknown += (unknown.empty() ? "" : ", ") + std::to_string(v);
  }
  if (!unknown.empty()) {
    c.problems.push_back("label mask '" + c.annotation + "' holds value(s) " + unknown + ", which data.classes does "
                         "not name (mask values are class names: data.classes: {\"1\": 1, ...}; an averaged mask "
                         "pyramid also shows in-between values here, which training never reads)");
    return;
  }
  const auto lookup = torch::tensor(std::vector<int64_t>(table.begin(), table.end()), torch::kLong);
  count_labels(d, classes, lookup.index({values.to(torch::kLong)}), c);
}

void check_annotations(const DataConfig& d, const ClassMap& classes, SlideCheck& c) {
  if (c.annotation.empty()) {
    c.problems.push_back("slide '" + c.slide + "' has no annotation file in the manifest");
    return;
  }
  if (is_label_mask_path(c.annotation)) {
    if (c.levels > 0) check_label_mask(d, classes, c, c.level0_width, c.level0_height);
    return;
  }
  GeoJsonOptions geojson;
  geojson.include_detections = d.include_detections;
  auto set = std::make_shared<AnnotationSet>(read_annotations(c.annotation, geojson));  // DataError: caller
  c.annotations = static_cast<int64_t>(set->annotations.size());
  c.skipped_lines = set->skipped_lines, c.skipped_points = set->skipped_points;
  c.skipped_detections = set->skipped_detections, c.skipped_empty = set->skipped_empty;
  c.repaired = set->repaired, c.skipped_invalid = set->skipped_invalid;
  if (c.annotations == 0) c.problems.push_back("annotations '" + c.annotation + "' hold no polygon");
  std::vector<std::string> unknown;
  for (auto& a : set->annotations) {
    if (a.class_name.empty()) a.class_name = "(unclassified)";
    ++c.class_counts[a.class_name];
    c.polygons += static_cast<int64_t>(a.parts.size());
    if (!classes.ids.count(a.class_name) &&
        std::find(unknown.begin(), unknown.end(), a.class_name) == unknown.end()) {
      unknown.push_back(a.class_name);
    }
    if (c.width > 0 && (a.bounds[0] < 0 || a.bounds[1] < 0 || a.bounds[2] > static_cast<double>(c.width) ||
                        a.bounds[3] > static_cast<double>(c.height))) {
      ++c.outside;
    }
  }
  for (const auto& name : unknown) {
    std::string known;
    for (const auto& [n, id] : classes.ids) known += (known.empty() ? "" : ", ") + n;
    c.problems.push_back("annotations '" + c.annotation + "' use class '" + name + "', which data.classes does not "
                         "name (known: " + (known.empty() ? "none" : known) + ")");
  }
  if (c.outside > 0) {
    c.problems.push_back("annotations '" + c.annotation + "': " + std::to_string(c.outside) + " polygon(s) leave "
                         "the slide's " + std::to_string(c.width) + "x" + std::to_string(c.height) + " pixels");
  }
  if (!unknown.empty() || c.width <= 0) return;
  // Class fractions over the slide, on a coarse raster.
  const double ds = static_cast<double>(std::max(c.width, c.height)) / static_cast<double>(kFractionSide);
  RasterGrid grid;
  grid.downsample = std::max(1.0, ds);
  grid.width = std::max<int64_t>(1, static_cast<int64_t>(c.width / grid.downsample));
  grid.height = std::max<int64_t>(1, static_cast<int64_t>(c.height / grid.downsample));
  const auto labels = rasterize(AnnotationIndex(set), classes, grid, d.unannotated == "ignore" ? ClassMap::kIgnore : 0);
  count_labels(d, classes, labels, c);
}

SlideCheck check_one(const DataConfig& d, const ClassMap& classes, const SlideEntry& e, const std::string& split,
                     const std::string& cache_dir) {
  SlideCheck c;
  c.split = split, c.slide = e.slide, c.annotation = e.annotation;
  try {
    const auto slide = Slide::open(e.slide);
    c.format = slide->format();
    c.levels = slide->level_count();
    // The scanned area (all of level 0 but for .mrxs): annotations are relative to its corner, as QuPath's are.
    const auto& b = slide->bounds();
    c.width = b[2] - b[0], c.height = b[3] - b[1];
    c.level0_width = slide->level(0).width, c.level0_height = slide->level(0).height;
    c.mpp = slide->mpp_x();
    c.mpp_source = slide->mpp_source();
    if (d.mpp > 0) {
      c.downsample = slide->downsample_for_mpp(d.mpp);
      if (c.downsample < 1.0 - 1e-6) {
        c.problems.push_back("slide '" + e.slide + "' was scanned at " + std::to_string(c.mpp) + " um/px, coarser "
                             "than data.mpp = " + std::to_string(d.mpp));
      }
    } else {
      c.downsample = slide->level(static_cast<int>(d.level)).downsample;
    }
    TissueOptions tissue = d.tissue == "none" ? TissueOptions{} : TissueOptions::preset(d.tissue);
    if (d.tissue == "none") tissue.mode = "none";
    const auto mask = TissueMask::detect_cached(*slide, tissue, cache_dir);
    c.tissue_fraction = mask.tissue_fraction();
    if (mask.empty()) c.problems.push_back("slide '" + e.slide + "': no tissue found (data.tissue = " + d.tissue + ")");
  } catch (const Error& err) {
    c.problems.push_back(err.what());
  }
  try {
    check_annotations(d, classes, c);
  } catch (const Error& err) {
    c.problems.push_back(err.what());
  }
  return c;
}

}  // namespace

int64_t DataCheckReport::problem_count() const {
  int64_t n = static_cast<int64_t>(problems.size());
  for (const auto& s : slides) n += static_cast<int64_t>(s.problems.size());
  return n;
}

DataCheckReport check_slide_dataset(const DataConfig& d, const std::string& cache_dir) {
  DataCheckReport report;
  ClassMap classes;
  try {
    classes = class_map_from_config(d);
    if (classes.ids.empty()) report.problems.push_back("data.classes is empty: map the class names below to ids");
  } catch (const Error& e) {
    report.problems.push_back(e.what());
  }
  const std::vector<std::pair<std::string, std::string>> splits{
      {"train", d.path}, {"val", d.val_path.empty() ? d.path : d.val_path}};
  for (const auto& [split, path] : splits) {
    if (path.empty()) {
      if (split == "train") report.problems.push_back("data.path names no slide dataset");
      continue;
    }
    try {
      const auto manifest = SlideManifest::read(path);
      const bool implicit_val = split == "val" && d.val_path.empty();
      if (implicit_val && !manifest.has_splits) continue;  // no validation data: not a problem
      for (const auto& e : manifest.split(split)) report.slides.push_back(check_one(d, classes, e, split, cache_dir));
    } catch (const Error& e) {
      report.problems.push_back(e.what());
    }
  }
  return report;
}

}  // namespace spvit::data

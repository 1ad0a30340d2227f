// Whole-slide image datasets (data.source: slides; docs/data.md, "Slide datasets"): slides in any OpenSlide format
// with QuPath GeoJSON or ASAP XML annotations or label masks, sampled as regions of data.size² pixels at the training resolution.
//
// Resolution: data.mpp (level-0 pixels per sample pixel = data.mpp / the slide's mpp; read from the coarsest level at
// least that fine and area-averaged, Slide::read_scaled) or, when data.mpp is 0, data.level.
// Sampling: sample `index` of epoch `e` is a pure function of (seed, e, index) — validation samples of (seed, index)
// only — computed from the tissue mask and the annotations alone, so a resumed run reaches any step without reading a
// pixel of the samples before it. tissue: a point drawn uniformly over the slides' tissue (slides weighted by their
// tissue area) becomes the sample's centre; a placement with less than data.min_tissue tissue is drawn again (up to
// 32 times, else the best one). balanced: a class drawn uniformly among the classes the split's annotations have, a
// point inside one of its annotations (chosen by area) the centre. A slide smaller than the sample sits in its
// middle with glass (white, background) around it.
// Labels: the annotations rasterised at the sample's resolution by the pixel-centre rule (annotations.h); pixels no
// annotation covers are background (0) or, with data.unannotated = ignore, ClassMap::kIgnore. A slide whose
// annotation file is a label mask (.png, .tif, .tiff; label_mask.h) takes its labels from the mask instead (nearest,
// value v = class "v"; 0 = unannotated); balanced sampling then draws centres from the mask's pixels of each class.
// .mrxs slides: annotations are relative to the scanned area (openslide.bounds-x/-y), as QuPath exports them, and
// samples are drawn inside it.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/data/annotations.h"
#include "spvit/data/dataset.h"
#include "spvit/data/tissue.h"

namespace spvit::data {

struct SlideEntry {
  std::string slide, annotation;  // paths; annotation "" when the manifest names none
  std::string split;              // train, val or test; "" when the manifest has no split column
};

// The slides a data path names: a folder with slides/ and annotations/ (annotation = the file in annotations/ with
// the slide's stem and extension .geojson, .json or .xml, or a label mask .png, .tif, .tiff), or a CSV manifest with a header naming the columns slide,
// annotation (optional) and split (optional: train, val or test; an empty cell is train), paths relative to the CSV's
// folder. Throws DataError naming the file (no such folder, a CSV without a slide column, a bad split, a slide
// without its annotation file).
struct SlideManifest {
  std::string path;
  std::vector<SlideEntry> entries;
  bool has_splits = false;  // a CSV with a split column

  static SlideManifest read(const std::string& path);
  // The entries of `split`: with a split column the rows of that split; otherwise every entry (the path is one split).
  std::vector<SlideEntry> split(const std::string& name) const;
};

struct SlideDatasetOptions {
  std::vector<SlideEntry> entries;
  std::string source;           // the manifest (for messages)
  double mpp = 0;               // target resolution; 0: `level`
  int level = 0;
  ClassMap classes;
  bool ignore_unannotated = false;
  GeoJsonOptions geojson;
  double mask_downsample = 0;   // label masks: level-0 pixels per mask pixel (0: from the sizes)
  TissueOptions tissue;
  std::string cache_dir;        // tissue masks ("" = none)
  double min_tissue = 0.25;
  bool balanced = false;
  bool fixed = false;           // validation: the same regions every epoch
  int64_t size = 1024;          // sample side at the target resolution
  // Sample corners are multiples of this (target pixels; a power of two): adaptive layouts read a leaf of side s at
  // scale s/P, which needs the corner to be a multiple of the largest such scale, root side / P. from_config, for an
  // adaptive patcher: the largest power of two <= size / 4 (enough for any P >= 4).
  int64_t align = 1;
  int64_t count = 1;            // samples per epoch
  uint64_t seed = 0;

  // data.* of a configuration, for `split` ("train" or "val") of `path`. Validation read from data.path itself (no
  // data.val_path) takes the manifest's val rows, and is empty when it has no split column.
  static SlideDatasetOptions from_config(const DataConfig& data, const std::string& path, const std::string& split,
                                         int64_t count, uint64_t seed);
};

// data.classes as a ClassMap: ids >= 1 or "ignore"; throws ConfigError naming the entry otherwise.
ClassMap class_map_from_config(const DataConfig& data);

// Where one sample lies: the slide and its top-left corner at the target resolution (target pixel (0, 0) is level-0
// pixel (0, 0)).
struct SlidePlacement {
  int64_t slide = 0;
  int64_t x = 0, y = 0;
  double tissue = 0;  // fraction of the sample's area that is tissue
};

class SlideDataset : public Dataset {
 public:
  // Opens every slide and annotation file and detects (or loads from the cache) each slide's tissue; errors name the
  // file (missing slide, annotation that does not parse, an unknown class name listing the known ones).
  explicit SlideDataset(SlideDatasetOptions options);
  ~SlideDataset() override;

  int64_t size() const override { return options_.count; }
  int spatial_dims() const override { return 2; }
  int64_t channels() const override { return 3; }
  int64_t num_classes() const override { return num_classes_; }
  std::vector<int64_t> spatial_shape(int64_t) const override { return {options_.size, options_.size}; }
  Sample read(int64_t index, const std::optional<Region>& region = std::nullopt) const override;
  Sample read_epoch(int64_t index, int64_t epoch, const std::optional<Region>& region) const override;
  // From the coarsest pyramid level at least as fine as the region's scale (Slide::read_scaled); the labels
  // rasterised at the block pixels. nullopt when the sample's corner is not a multiple of the scale (see `align`).
  std::optional<Sample> read_scaled(int64_t index, const ScaledRegion& region) const override {
    return read_scaled_epoch(index, 0, region);
  }
  std::optional<Sample> read_scaled_epoch(int64_t index, int64_t epoch, const ScaledRegion& region) const override;
  bool has_scaled_reads() const override { return true; }
  std::string describe() const override;
  // The slide file name of sample `index` (as placed in epoch 0: validation regions are fixed).
  std::string sample_group(int64_t index) const override;
  std::vector<std::pair<std::string, std::string>> class_colours() const override { return class_colours_; }

  // Where sample `index` of `epoch` lies (no pixel is read).
  SlidePlacement placement(int64_t index, int64_t epoch) const;
  // Regions read so far at full resolution (read, read_epoch) and scaled (read_scaled), for tests of what is read.
  int64_t reads() const { return reads_.load(); }
  int64_t scaled_reads() const { return scaled_reads_.load(); }

  struct SlideState;  // one opened slide: reader, annotations, tissue, target resolution
  const SlideState& slide(int64_t i) const { return *slides_[static_cast<size_t>(i)]; }
  int64_t slide_count() const { return static_cast<int64_t>(slides_.size()); }
  // Level-0 pixels per sample pixel of slide `i`.
  double downsample(int64_t i) const;
  const std::string& slide_path(int64_t i) const;

 private:
  SlidePlacement tissue_placement(uint64_t key) const;
  SlidePlacement balanced_placement(uint64_t key) const;
  SlidePlacement place_around(int64_t slide, double cx, double cy) const;  // centre in target pixels
  // Balanced sampling from a label mask: indexes the overview pixels of each label, `add`(label, level-0 area).
  void index_mask_classes(SlideState& st, const std::function<void(int64_t, double)>& add) const;

  SlideDatasetOptions options_;
  std::vector<std::unique_ptr<SlideState>> slides_;
  std::vector<double> tissue_cdf_;        // cumulative tissue area (target pixels) over slides
  struct BalancedClass {                  // what the balanced sampler draws from, per foreground label
    int64_t label = 0;
    std::vector<std::pair<int64_t, int64_t>> annotations;  // (slide, annotation)
    std::vector<double> cdf;                               // cumulative bounds area
  };
  std::vector<BalancedClass> balanced_;
  std::vector<std::pair<std::string, std::string>> class_colours_;  // from the annotation files, first seen first
  int64_t num_classes_ = 2;
  mutable std::atomic<int64_t> reads_{0}, scaled_reads_{0};
};

}  // namespace spvit::data

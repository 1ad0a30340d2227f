// `spvit data check`: opens every slide and annotation file of a slide dataset and reports what a long run would
// trip over, before it starts (docs/data.md, "Checking a slide dataset").
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "spvit/core/config.h"

namespace spvit::data {

struct SlideCheck {
  std::string split, slide, annotation;
  // The slide (when it opens).
  std::string format;
  int levels = 0;
  int64_t width = 0, height = 0;  // the scanned area at level 0 (Slide::bounds; all of level 0 but for .mrxs)
  int64_t level0_width = 0, level0_height = 0;  // all of level 0
  double mpp = 0;
  std::string mpp_source;
  double downsample = 0;          // level-0 pixels per training pixel (0 when it cannot be had)
  double tissue_fraction = -1;    // of the slide area (-1: not detected)
  // The annotations (when they parse).
  // A label mask: its size and level-0 pixels per mask pixel (0 when the annotations are vector files); class_counts
  // then counts the values it holds (1 each).
  int64_t mask_width = 0, mask_height = 0;
  double mask_downsample = 0;
  int64_t annotations = 0, polygons = 0;        // annotations (features), and the polygons they hold
  std::map<std::string, int64_t> class_counts;  // annotations per class name
  int64_t skipped_lines = 0, skipped_points = 0, skipped_detections = 0, skipped_empty = 0;
  int64_t repaired = 0, skipped_invalid = 0;    // invalid polygons made valid, and those left without area
  int64_t outside = 0;                          // annotations whose bounds leave the slide
  std::vector<double> label_fractions;          // of the slide area per label 0..K-1, then ignored (last)
  std::vector<std::string> label_names;         // of labels 0..K-1 (background, then data.classes' first names)
  std::vector<std::string> problems;            // each names the file and what is wrong
};

struct DataCheckReport {
  std::vector<SlideCheck> slides;
  std::vector<std::string> problems;  // of the dataset as a whole (a manifest that cannot be read)
  int64_t problem_count() const;
};

// Checks the train split of data.path and the validation split (data.val_path, or data.path's val rows). Never
// throws for bad data: every problem is collected. `cache_dir` holds the tissue masks it detects ("" = none).
DataCheckReport check_slide_dataset(const DataConfig& data, const std::string& cache_dir);

}  // namespace spvit::data

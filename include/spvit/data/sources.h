// The dataset-source registry (core/registry.h): the one list of data.source names and how each opens its data.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "spvit/core/config.h"
#include "spvit/core/registry.h"
#include "spvit/data/dataset.h"

namespace spvit::data {

struct DatasetSourceEntry {
  std::string name;
  std::string summary;
  bool reads_files = false;   // true: data.path / data.val_path name the data; false: generated from the config
  bool needs_opencv = false;  // refused by the configuration check in builds without OpenCV
  int spatial_dims = 0;       // the only dimension it holds (image folders: 2); 0 = either
  // true: data.path may be a manifest with a split column, and validation comes from its val rows when
  // data.val_path is empty (slides).
  bool manifest_splits = false;
  // Opens one split ("train" or "val"): `path` (files), or `count` samples drawn from `seed` (generated data, and
  // regions of slides). Null when the split is empty (a manifest without val rows).
  std::function<std::shared_ptr<Dataset>(const DataConfig& data, const std::string& path, const std::string& split,
                                         int64_t count, uint64_t seed)>
      open;
};
const Registry<DatasetSourceEntry>& dataset_sources();

// The name of each label id 0..classes-1 as data.classes gives it (slides): the first name of that id in file order
// ("" for 0 and for ids no name maps to; "ignore" entries have no id). The one rule for what a class is called —
// in `spvit data check`, in `spvit infer`'s outputs — and which name's colour it is drawn in.
std::vector<std::string> class_names_by_id(const DataConfig& data, int64_t classes);

}  // namespace spvit::data

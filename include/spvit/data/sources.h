// The dataset-source registry (core/registry.h): the one list of data.source names and how each opens its data.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

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
  // Opens one split: `path` (files), or `count` samples drawn from `seed` (generated data).
  std::function<std::shared_ptr<Dataset>(const DataConfig& data, const std::string& path, int64_t count,
                                         uint64_t seed)>
      open;
};
const Registry<DatasetSourceEntry>& dataset_sources();

}  // namespace spvit::data

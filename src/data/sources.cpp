#include "spvit/data/sources.h"

#include <algorithm>
#include <cstdlib>

#include "spvit/build_info.h"
#include "spvit/data/formats.h"
#include "spvit/data/nifti_dataset.h"
#include "spvit/data/synthetic.h"
#if SPVIT_HAVE_INFER
#include "spvit/data/slide_dataset.h"
#endif

namespace spvit::data {
namespace {

std::shared_ptr<Dataset> open_synthetic(const DataConfig& d, const std::string&, const std::string&, int64_t count,
                                        uint64_t seed) {
  SyntheticOptions s;
  s.spatial_dims = d.kind == "mri" ? 3 : 2;
  s.shape.assign(static_cast<size_t>(s.spatial_dims), d.size);
  s.count = count;
  s.seed = seed;
  return d.kind == "mri" ? make_synthetic_mri(s) : make_synthetic_pathology(s);
}

std::shared_ptr<Dataset> open_slides(const DataConfig& d, const std::string& path, const std::string& split,
                                     int64_t count, uint64_t seed) {
#if SPVIT_HAVE_INFER
  auto options = SlideDatasetOptions::from_config(d, path, split, count, seed);
  if (options.entries.empty()) return nullptr;
  return std::make_shared<SlideDataset>(std::move(options));
#else
  SPVIT_THROW(ConfigError, "data.source = slides needs a build with OpenCV and libtiff (scripts/install-deps.sh)");
#endif
}

std::shared_ptr<Dataset> open_nifti(const DataConfig& d, const std::string& path, const std::string& split,
                                    int64_t count, uint64_t seed) {
  auto options = NiftiDatasetOptions::from_config(d, path, split, count, seed);
  if (options.cases.empty() && split != "train") return nullptr;
  return std::make_shared<NiftiDataset>(std::move(options));
}

}  // namespace

const Registry<DatasetSourceEntry>& dataset_sources() {
  static const Registry<DatasetSourceEntry> registry(
      "dataset source", "data.source",
      {{"synthetic", "generated on the fly from the seed (data.kind: pathology 2-D RGB, mri 3-D)", false, false, 0,
        false, open_synthetic},
       {"folder", "images/ + masks/ folders of 2-D images read with OpenCV", true, true, 2, false,
        [](const DataConfig&, const std::string& path, const std::string&, int64_t, uint64_t) {
          return open_image_folder(path);
        }},
       {"hdf5", "an HDF5 file with datasets images and masks (2-D or 3-D, chunked reads)", true, false, 0, false,
        [](const DataConfig&, const std::string& path, const std::string&, int64_t, uint64_t) {
          return open_hdf5(path);
        }},
       {"slides", "whole-slide images (OpenSlide) with QuPath GeoJSON / ASAP XML annotations: slides/ + "
                  "annotations/ folders or a CSV manifest; regions of data.size at data.mpp",
        true, true, 2, true, open_slides},
       {"nifti", "3-D NIfTI volumes in a Medical Segmentation Decathlon or nnU-Net v2 dataset folder (dataset.json); "
                 "data.size³ crops of the cases of data.fold",
        true, false, 3, true, open_nifti}});
  return registry;
}

std::vector<std::string> class_names_by_id(const DataConfig& d, int64_t classes) {
  std::vector<std::string> names(static_cast<size_t>(std::max<int64_t>(classes, 0)));
  for (const auto& [name, value] : d.classes) {
    if (value == "ignore") continue;
    const int64_t id = std::atoll(value.c_str());
    if (id >= 1 && id < classes && names[static_cast<size_t>(id)].empty()) names[static_cast<size_t>(id)] = name;
  }
  return names;
}

}  // namespace spvit::data

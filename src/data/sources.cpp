#include "spvit/data/sources.h"

#include "spvit/data/formats.h"
#include "spvit/data/synthetic.h"

namespace spvit::data {
namespace {

std::shared_ptr<Dataset> open_synthetic(const DataConfig& d, const std::string&, int64_t count, uint64_t seed) {
  SyntheticOptions s;
  s.spatial_dims = d.kind == "mri" ? 3 : 2;
  s.shape.assign(static_cast<size_t>(s.spatial_dims), d.size);
  s.count = count;
  s.seed = seed;
  return d.kind == "mri" ? make_synthetic_mri(s) : make_synthetic_pathology(s);
}

}  // namespace

const Registry<DatasetSourceEntry>& dataset_sources() {
  static const Registry<DatasetSourceEntry> registry(
      "dataset source", "data.source",
      {{"synthetic", "generated on the fly from the seed (data.kind: pathology 2-D RGB, mri 3-D)", false, false, 0,
        open_synthetic},
       {"folder", "images/ + masks/ folders of 2-D images read with OpenCV", true, true, 2,
        [](const DataConfig&, const std::string& path, int64_t, uint64_t) { return open_image_folder(path); }},
       {"hdf5", "an HDF5 file with datasets images and masks (2-D or 3-D, chunked reads)", true, false, 0,
        [](const DataConfig&, const std::string& path, int64_t, uint64_t) { return open_hdf5(path); }}});
  return registry;
}

}  // namespace spvit::data

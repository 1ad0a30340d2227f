// 3D inference on NIfTI volumes (spvit infer --input CASE.nii.gz | FOLDER; docs/inference.md, "Volumes"): a case's
// channels are resampled to the training spacing (data.spacing) and normalised with the checkpoint's statistics
// slab by slab, segmented by the sliding window (volume_window.h), and the blended probabilities are resampled back to
// the input's voxel grid (linear) before the argmax, so the label map has the input's shape, orientation and affine.
#pragma once
#include <torch/torch.h>

#include <array>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "spvit/core/config.h"
#include "spvit/data/nifti_dataset.h"
#include "spvit/data/nifti_file.h"
#include "spvit/infer/volume_window.h"

namespace spvit::infer {

// A union of label values reported as one structure (BraTS: whole tumour = 1, 2, 3).
struct LabelRegion {
  std::string name;
  std::vector<int64_t> labels;
};

// The regions to report: data.regions ("name: 1,2,3") then dataset.json's region labels not named there. ConfigError
// for a data.regions value that is not a comma-separated list of label values in [1, classes).
std::vector<LabelRegion> evaluation_regions(const DataConfig& data,
                                            const std::map<std::string, std::vector<int64_t>>& dataset_regions,
                                            int64_t classes);

// What 3D inference needs of the training data: the checkpoint's data statistics (data::NiftiDataset::
// statistics_json) and its configuration.
struct VolumeModelData {
  data::NiftiNormalization normalization;
  std::vector<std::string> channel_names;
  std::vector<std::string> class_names;  // index = label value ("label <v>" where dataset.json names none)
  std::vector<LabelRegion> regions;
  std::optional<std::array<double, 3>> spacing;  // data.spacing (i, j, k mm)
  int64_t window = 0;                             // data.size: the trained crop side
  int64_t ignore_label = -1;                      // nnU-Net's ignore label: reference voxels scored by no Dice

  // DataError when the checkpoint was not trained on NIfTI data (no statistics) or they do not parse.
  static VolumeModelData from_checkpoint(const std::string& statistics_json, const Config& config, int64_t classes);
};

// The cases `input` names: a NIfTI file (a case of one file — single channel, or MSD's 4-D multi-channel — or one
// channel file CASE_0000.nii.gz of an nnU-Net case, whose siblings CASE_0001... complete it), or a folder of such
// files (nnU-Net's imagesTs/). Unlabelled (label ""). DataError naming what is missing: no such file, no NIfTI
// files in a folder, a channel file of a case missing.
std::vector<data::NiftiCase> volume_cases(const std::string& input, int64_t channels);

struct VolumeSegmentation {
  data::NiftiHeader header;       // the input's (first channel file's): the label map's geometry
  torch::Tensor labels;           // [D, H, W] uint8 on the input's voxel grid (tensor order k, j, i)
  std::array<int64_t, 3> model_shape{};  // the resampled grid the windows ran on (k, j, i)
  VolumeWindowStats windows;
  double seconds = 0;
};

// Segments one case. `classes` is the model's. DataError naming the case for a channel count or shape that does not
// fit the model (checked before any window runs).
VolumeSegmentation segment_volume(const data::NiftiCase& c, const VolumeModelData& model, int64_t classes,
                                  const VolumePredictor& predict, VolumeWindowOptions options);

// Voxels of each label value in a label map, [classes] int64.
torch::Tensor label_voxels(const torch::Tensor& labels, int64_t classes);
// A case's label volumes in mL (voxel count × the voxel's mm³ / 1000) per label and region, from the input's header and
// label_voxels: {"shape", "spacing_mm", "voxels": {name: n}, "volume_ml": {name: v}, "regions_ml": {name: v}}.
nlohmann::json volume_summary(const data::NiftiHeader& header, const torch::Tensor& voxels,
                              const VolumeModelData& model);

// True when `input` is a NIfTI file (.nii, .nii.gz) or a folder holding one: spvit infer's 3D path.
bool is_volume_input(const std::string& input);

}  // namespace spvit::infer

// 3D volume datasets in NIfTI files (data.source: nifti; docs/data.md, "Volumes"): the Medical Segmentation
// Decathlon layout (dataset.json with `modality`, `labels` and a `training` list; one 4D file per case, channels on
// the 4th axis) and nnU-Net v2's (dataset.json with `channel_names`, `labels`, `file_ending`; imagesTr/ with one file
// per channel, CASE_0000.nii.gz, and labelsTr/CASE.nii.gz).
//
// Samples are crops of data.size³ voxels, as nnU-Net trains on patches: sample `index` of epoch `e` is a pure
// function of (seed, e, index) — validation samples of (seed, index) only — so a resumed run reaches any step without
// reading the samples before it. The case is drawn uniformly; one sample in three is centred on a foreground voxel
// of a class drawn uniformly among the case's classes (nnU-Net's foreground oversampling, from a cached sample of
// each class's voxel positions), the others anywhere in the volume. A case smaller than the crop sits in its middle;
// padding voxels are 0 in the image and ignored (ClassMap::kIgnore) in the labels.
//
// Voxel order: file order i fastest, so tensors are [D, H, W(, C)] = [k, j, i]: a sequence rank's band of D rows is a
// slab of k, read on its own (data/nifti_file.h: .nii.gz decompresses up to the slab and keeps only the slab).
// Normalisation as nnU-Net's: z-score per case and channel (mean and std of the case's voxels) for MR and any other
// channel, for CT (channel name "CT") the dataset's foreground intensities clipped to their 0.5 and 99.5 percentiles
// and z-scored with the foreground mean and std, "noNorm" channels as stored. Statistics are computed once, stored
// in data.cache_dir and read back (NiftiNormalization::to_json; not yet in checkpoints).
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "spvit/core/config.h"
#include "spvit/data/dataset.h"
#include "spvit/data/nifti_file.h"

namespace spvit::data {

struct NiftiCase {
  std::string name;                  // case identifier (BRATS_001, prostate_00)
  std::vector<std::string> images;   // one file per channel (nnU-Net), or one 4D file holding every channel (MSD)
  std::string label;                 // "" for unlabelled cases
};

// What a dataset folder holds: its layout, channels, labels and cases (dataset.json and the files it names).
struct NiftiDatasetInfo {
  std::string root;
  std::string layout;                        // "msd" or "nnunet"
  std::vector<std::string> channel_names;    // index = channel
  std::map<std::string, int64_t> labels;     // name -> value (background 0 included)
  std::map<std::string, std::vector<int64_t>> regions;  // nnU-Net region labels: name -> the label values it unites
  // nnU-Net v2's "ignore" label (the highest value): its voxels are read as ClassMap::kIgnore (no loss, no Dice) and
  // it is not a class; -1 when dataset.json has none.
  int64_t ignore_label = -1;
  std::vector<NiftiCase> cases;              // training cases (labelled), sorted by name
  std::string file_ending = ".nii.gz";

  // Reads <root>/dataset.json and lists the training cases; DataError naming the file and what is missing (no
  // dataset.json, neither layout's keys, a case without an image or channel file, a label file that does not exist).
  static NiftiDatasetInfo read(const std::string& root);
  int64_t channels() const { return static_cast<int64_t>(channel_names.size()); }
  int64_t num_classes() const;  // largest label value + 1 (the ignore label excluded)
  // The cases of fold `fold` (split "train" or "val"): from <root>/splits_final.json when present (nnU-Net's list of
  // {"train": [...], "val": [...]}), else 5 folds of the sorted cases (case i is in the val split of fold i % 5).
  std::vector<NiftiCase> split(const std::string& split, int64_t fold) const;
};

// Per-channel intensity normalisation (see the header comment).
struct NiftiNormalization {
  struct Channel {
    std::string scheme = "zscore";  // zscore (per case), ct (dataset foreground statistics), none
    double mean = 0, std = 1, low = 0, high = 0;  // ct only
  };
  std::vector<Channel> channels;

  // The scheme of each channel from its name; CT statistics from the foreground voxels of `cases` (every label > 0
  // voxel, up to 10^7 of them sampled evenly).
  static NiftiNormalization compute(const NiftiDatasetInfo& info, const std::vector<NiftiCase>& cases);
  // Channel `channel` of one case ([k, j, i] float32) normalised; case_mean/case_std: that case's statistics (zscore).
  torch::Tensor apply(torch::Tensor values, int64_t channel, double case_mean, double case_std) const;
  std::string to_json() const;
  static NiftiNormalization from_json(const std::string& json);
};

struct NiftiDatasetOptions {
  NiftiDatasetInfo info;
  std::vector<NiftiCase> cases;  // this split's
  std::vector<NiftiCase> normalization_cases;  // whose statistics normalise CT channels: the fold's training cases
  bool normalize = true;         // false: no dataset normalisation statistics (a per-case check reads no samples)
  std::string cache_dir;         // normalisation statistics and foreground positions ("" = none: computed each time)
  // data.spacing (mm along i, j, k): cases of another spacing are resampled once into cache_dir (nifti_resampled.h)
  std::optional<std::array<double, 3>> spacing;
  int64_t size = 128;            // crop side in voxels
  int64_t count = 1;             // samples per epoch
  bool fixed = false;            // validation: the same crops every epoch
  uint64_t seed = 0;

  // data.* for `split` ("train" or "val") of the dataset folder `path`, fold data.fold.
  static NiftiDatasetOptions from_config(const DataConfig& data, const std::string& path, const std::string& split,
                                         int64_t count, uint64_t seed);
};

// `spvit data check` on a NIfTI dataset: every case of the fold opened on its own (headers, shapes, affines, label
// values against dataset.json, each problem collected instead of thrown), the voxel spacings compared, and the
// training split's normalisation statistics computed and cached (what training then reads).
struct NiftiCaseCheck {
  std::string name, split;
  std::vector<int64_t> shape;        // i, j, k
  std::array<double, 3> spacing{};
  std::map<int64_t, int64_t> label_counts;
  std::vector<std::string> problems;
};
struct NiftiCheckReport {
  NiftiDatasetInfo info;
  std::vector<NiftiCaseCheck> cases;
  NiftiNormalization normalization;  // empty when the training split could not be opened
  std::vector<std::string> problems;  // dataset-wide (dataset.json, mixed spacings, normalisation)
  int64_t problem_count() const;
};
NiftiCheckReport check_nifti_dataset(const DataConfig& data, const std::string& cache_dir);

// Where one sample lies: the case and the crop's first voxel (tensor order k, j, i; negative where it is padded).
struct NiftiPlacement {
  int64_t case_index = 0;
  std::array<int64_t, 3> origin{};
};

class NiftiDataset : public Dataset {
 public:
  // Opens every case's headers (shape, spacing, affine agreement of image and label files), loads or computes the
  // normalisation statistics and each case's foreground positions. Errors name the case and the file.
  explicit NiftiDataset(NiftiDatasetOptions options);
  ~NiftiDataset() override;

  int64_t size() const override { return options_.count; }
  int spatial_dims() const override { return 3; }
  int64_t channels() const override { return options_.info.channels(); }
  int64_t num_classes() const override { return options_.info.num_classes(); }
  std::vector<int64_t> spatial_shape(int64_t) const override {
    return {options_.size, options_.size, options_.size};
  }
  Sample read(int64_t index, const std::optional<Region>& region = std::nullopt) const override {
    return read_epoch(index, 0, region);
  }
  Sample read_epoch(int64_t index, int64_t epoch, const std::optional<Region>& region) const override;
  std::string sample_group(int64_t index) const override;
  std::string describe() const override;
  // {"normalization": NiftiNormalization::to_json, "channel_names": [...], "labels": {name: value},
  //  "regions": {name: [values]}, "ignore_label": v or -1} (dataset.json's): what 3D inference and evaluation need
  //  besides the configuration.
  std::string statistics_json() const override;

  NiftiPlacement placement(int64_t index, int64_t epoch) const;
  const NiftiNormalization& normalization() const { return normalization_; }
  const NiftiHeader& header(int64_t case_index) const;
  int64_t case_count() const { return static_cast<int64_t>(options_.cases.size()); }
  const NiftiCase& case_files(int64_t case_index) const { return options_.cases.at(static_cast<size_t>(case_index)); }
  std::map<int64_t, int64_t> label_counts(int64_t case_index) const;  // label value -> voxels
  // Voxels read so far (image channels and labels), for tests of what a rank reads.
  int64_t voxels_read() const;

  struct CaseState;

 private:
  NiftiDatasetOptions options_;
  NiftiNormalization normalization_;
  std::vector<std::unique_ptr<CaseState>> cases_;
};

}  // namespace spvit::data

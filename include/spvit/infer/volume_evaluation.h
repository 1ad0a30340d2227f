// Whole-case scores of 3D segmentations (spvit eval on a NIfTI model; docs/data.md, "Volumes"): Dice per label and per
// evaluation region (a union of labels: BraTS' whole tumour, tumour core, enhancing tumour), per case and overall, as
// nnU-Net reports them: a structure absent from both the prediction and the reference has no Dice (null) and is left
// out of the means.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "spvit/infer/volume.h"

namespace spvit::infer {

// Overlap counts of one case: for each label 1..K-1 then each region, |P ∩ R| and |P| + |R| (voxels).
struct CaseOverlap {
  std::string name;
  std::vector<double> intersection, total;
  static CaseOverlap of(const std::string& name, const torch::Tensor& predicted, const torch::Tensor& reference,
                        const VolumeModelData& model);
  // 2 |P ∩ R| / (|P| + |R|) per structure; NaN where both are empty.
  std::vector<double> dice() const;
};

// A reference label map for a case segmented on `like`'s grid, [D, H, W] int64. DataError naming the case when it is
// missing, unreadable or of another shape.
torch::Tensor read_reference_labels(const std::string& path, const data::NiftiHeader& like, const std::string& name);

// {"labels": [...], "regions": [...], "per_case": {case: {structure: dice|null}}, "mean": {structure: dice},
//  "mean_foreground_dice": mean over the labels' means}.
nlohmann::json volume_metrics_json(const std::vector<CaseOverlap>& cases, const VolumeModelData& model);

}  // namespace spvit::infer

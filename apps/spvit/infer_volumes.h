// spvit infer's 3D path (infer_volumes.cpp).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "spvit/core/config.h"

#include "app_context.h"
#include "volume_run.h"

namespace spvit::app {

// `labels_dir`: when set, each case's label map is scored against <labels_dir>/<case>.nii.gz (Dice per label and
// region, per case and mean; printed and stored in summary.json under "metrics").
int run_volume_inference(AppContext& ctx, const VolumeRunOptions& options, const std::string& input,
                         const std::string& out_dir, const std::string& labels_dir = "");

// spvit eval's whole-case evaluation of a NIfTI model (eval_volumes.cpp): the cases of `data_path` (a dataset
// folder: every labelled case dataset.json lists) or, when empty, the checkpoint configuration's validation fold;
// metrics.json in `out_dir`.
int run_volume_evaluation(AppContext& ctx, const VolumeRunOptions& options, const Config& config,
                          const std::string& data_path, const std::string& out_dir);

// Per-case and mean Dice lines of volume_metrics_json.
void print_volume_metrics(const nlohmann::json& metrics);

}  // namespace spvit::app

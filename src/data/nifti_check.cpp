// check_nifti_dataset (nifti_dataset.h): every case opened on its own, problems collected.
#include <cmath>

#include "spvit/core/error.h"
#include "spvit/data/nifti_dataset.h"
#include "spvit/data/nifti_resampled.h"

namespace spvit::data {

int64_t NiftiCheckReport::problem_count() const {
  int64_t n = static_cast<int64_t>(problems.size());
  for (const auto& c : cases) n += static_cast<int64_t>(c.problems.size());
  return n;
}

NiftiCheckReport check_nifti_dataset(const DataConfig& data, const std::string& cache_dir) {
  NiftiCheckReport report;
  report.info = NiftiDatasetInfo::read(data.path);  // an unreadable dataset.json is an error, not a report
  DataConfig d = data;
  d.cache_dir = cache_dir;
  for (const std::string split : {"train", "val"}) {
    std::vector<NiftiCase> cases;
    try {
      cases = report.info.split(split, d.fold);
    } catch (const Error& e) {
      report.problems.push_back(e.what());
      continue;
    }
    for (const auto& c : cases) {
      NiftiCaseCheck check;
      check.name = c.name;
      check.split = split;
      try {
        NiftiDatasetOptions options;  // one case, as NiftiDatasetOptions::from_config sets the rest
        options.info = report.info;
        options.cache_dir = d.cache_dir;
        options.spacing = target_spacing(d);
        options.size = d.size;
        options.cases = {c};
        options.normalize = false;  // the training split's statistics are computed once, below
        const NiftiDataset one(std::move(options));
        check.shape = one.header(0).shape;
        check.spacing = one.header(0).spacing;
        check.label_counts = one.label_counts(0);
      } catch (const Error& e) {
        check.problems.push_back(e.what());
      }
      report.cases.push_back(std::move(check));
    }
  }
  // One spacing for all: the first readable case's is the reference.
  const NiftiCaseCheck* reference = nullptr;
  std::string offenders;
  for (const auto& c : report.cases) {
    if (c.shape.empty()) continue;
    if (!reference) {
      reference = &c;
      continue;
    }
    bool same = true;
    for (int k = 0; k < 3; ++k) {
      same = same && std::abs(c.spacing[k] - reference->spacing[k]) <= 1e-3 * std::max(c.spacing[k], reference->spacing[k]);
    }
    if (!same) {
      char sp[96];
      std::snprintf(sp, sizeof sp, "%.4g x %.4g x %.4g", c.spacing[0], c.spacing[1], c.spacing[2]);
      offenders += (offenders.empty() ? "" : ", ") + c.name + " (" + sp + " mm)";
    }
  }
  if (!offenders.empty()) {
    char sp[96];
    std::snprintf(sp, sizeof sp, "%.4g x %.4g x %.4g", reference->spacing[0], reference->spacing[1],
                  reference->spacing[2]);
    report.problems.push_back("mixed voxel spacings: " + reference->name + " has " + sp + " mm but " + offenders +
                              " differ; set data.spacing to resample them to one spacing");
  }
  // The training split's normalisation, computed once and cached for training.
  if (report.problem_count() == 0) {
    try {
      const NiftiDataset train(NiftiDatasetOptions::from_config(d, data.path, "train", 1, 0));
      report.normalization = train.normalization();
    } catch (const Error& e) {
      report.problems.push_back(e.what());
    }
  }
  return report;
}

}  // namespace spvit::data

// Whole-case Dice of 3D segmentations (volume_evaluation.h).
#include "spvit/infer/volume_evaluation.h"

#include <cmath>
#include <limits>

#include "spvit/core/error.h"

namespace spvit::infer {
namespace {

std::vector<std::string> structure_names(const VolumeModelData& m) {
  std::vector<std::string> names(m.class_names.begin() + 1, m.class_names.end());
  for (const auto& r : m.regions) names.push_back(r.name);
  return names;
}

}  // namespace

CaseOverlap CaseOverlap::of(const std::string& name, const torch::Tensor& predicted, const torch::Tensor& reference,
                            const VolumeModelData& model) {
  SPVIT_CHECK(predicted.sizes() == reference.sizes(), "case '", name, "': prediction ", predicted.sizes(),
              " and reference ", reference.sizes(), " differ in shape");
  CaseOverlap o;
  o.name = name;
  auto p = predicted.to(torch::kLong), r = reference.to(torch::kLong);
  if (model.ignore_label >= 0) {  // voxels the reference marks "ignore" count for no structure
    const auto scored = r != model.ignore_label;
    p = p.masked_fill(~scored, -1);
    r = r.masked_fill(~scored, -1);
  }
  const auto add = [&](const torch::Tensor& in_p, const torch::Tensor& in_r) {
    o.intersection.push_back((in_p & in_r).sum().item<double>());
    o.total.push_back(in_p.sum().item<double>() + in_r.sum().item<double>());
  };
  const auto K = static_cast<int64_t>(model.class_names.size());
  for (int64_t v = 1; v < K; ++v) add(p == v, r == v);
  for (const auto& region : model.regions) {
    auto in_p = torch::zeros_like(p, torch::kBool), in_r = torch::zeros_like(r, torch::kBool);
    for (auto v : region.labels) in_p |= p == v, in_r |= r == v;
    add(in_p, in_r);
  }
  return o;
}

torch::Tensor read_reference_labels(const std::string& path, const data::NiftiHeader& like, const std::string& name) {
  const auto h = data::read_nifti_header(path);
  if (std::vector<int64_t>(h.shape.begin(), h.shape.end()) !=
      std::vector<int64_t>(like.shape.begin(), like.shape.begin() + 3)) {
    SPVIT_THROW(DataError, "case '", name, "': reference labels '", path, "' do not have the image's shape ",
                like.shape[0], "x", like.shape[1], "x", like.shape[2]);
  }
  auto values = data::read_nifti(path);
  return torch::tensor(values).reshape({like.shape[2], like.shape[1], like.shape[0]}).round().to(torch::kLong);
}

std::vector<double> CaseOverlap::dice() const {
  std::vector<double> d;
  for (size_t s = 0; s < total.size(); ++s) {
    d.push_back(total[s] > 0 ? 2 * intersection[s] / total[s] : std::numeric_limits<double>::quiet_NaN());
  }
  return d;
}

nlohmann::json volume_metrics_json(const std::vector<CaseOverlap>& cases, const VolumeModelData& model) {
  const auto names = structure_names(model);
  const size_t labels = model.class_names.size() - 1;
  nlohmann::json j;
  j["labels"] = std::vector<std::string>(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(labels));
  std::vector<std::string> regions(names.begin() + static_cast<std::ptrdiff_t>(labels), names.end());
  j["regions"] = regions;
  j["cases"] = cases.size();
  std::vector<double> sum(names.size(), 0.0);
  std::vector<int64_t> counted(names.size(), 0);
  j["per_case"] = nlohmann::json::object();
  for (const auto& c : cases) {
    const auto d = c.dice();
    auto& out = j["per_case"][c.name];
    for (size_t s = 0; s < names.size(); ++s) {
      if (std::isnan(d[s])) {
        out[names[s]] = nullptr;
        continue;
      }
      out[names[s]] = d[s];
      sum[s] += d[s];
      ++counted[s];
    }
  }
  double label_sum = 0;
  int64_t label_count = 0;
  j["mean"] = nlohmann::json::object();
  for (size_t s = 0; s < names.size(); ++s) {
    if (counted[s] == 0) {
      j["mean"][names[s]] = nullptr;
      continue;
    }
    const double mean = sum[s] / static_cast<double>(counted[s]);
    j["mean"][names[s]] = mean;
    if (s < labels) label_sum += mean, ++label_count;
  }
  j["mean_foreground_dice"] = label_count ? label_sum / static_cast<double>(label_count) : 0.0;
  return j;
}

}  // namespace spvit::infer

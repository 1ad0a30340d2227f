// NiftiNormalization: nnU-Net's intensity normalisation of NIfTI channels (z-score per case; CT from the dataset's
// foreground statistics; none).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

#include "spvit/core/error.h"
#include "spvit/data/nifti_dataset.h"

namespace spvit::data {
namespace {

constexpr int64_t kCtSamples = 10'000'000;  // foreground intensities kept over all cases (evenly spaced)

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The value at fraction q of the sorted values (linear between neighbours, as numpy.percentile).
double percentile(std::vector<float>& v, double q) {
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<size_t>(std::floor(pos));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  const double a = v[i];
  if (i + 1 >= v.size()) return a;
  const double b = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(i) + 1, v.end());
  return a + (pos - static_cast<double>(i)) * (b - a);
}

}  // namespace

NiftiNormalization NiftiNormalization::compute(const NiftiDatasetInfo& info, const std::vector<NiftiCase>& cases) {
  NiftiNormalization n;
  for (const auto& name : info.channel_names) {
    Channel c;
    const auto l = lowercase(name);
    c.scheme = l == "ct" ? "ct" : l == "nonorm" ? "none" : "zscore";
    n.channels.push_back(c);
  }
  for (size_t ch = 0; ch < n.channels.size(); ++ch) {
    if (n.channels[ch].scheme != "ct") continue;
    // The foreground (label > 0) intensities of every case, at most kCtSamples / cases from each, evenly spaced.
    std::vector<float> values;
    const int64_t per_case = std::max<int64_t>(1, kCtSamples / static_cast<int64_t>(std::max<size_t>(1, cases.size())));
    for (const auto& c : cases) {
      const auto labels = read_nifti(c.label);
      const bool one_file = c.images.size() == 1;
      const auto& path = one_file ? c.images[0] : c.images.at(ch);
      const auto header = read_nifti_header(path);
      const auto image = read_nifti_slab(path, 0, header.shape[2], one_file ? static_cast<int64_t>(ch) : 0);
      if (image.size() != labels.size()) {
        SPVIT_THROW(DataError, "case '", c.name, "': image '", path, "' has ", image.size(), " voxels per channel but its ",
                    "label '", c.label, "' has ", labels.size());
      }
      // Foreground: a label > 0 that is not nnU-Net's ignore label.
      const auto is_foreground = [&](float l) {
        return l > 0.5f && (info.ignore_label < 0 || std::lround(l) != info.ignore_label);
      };
      int64_t foreground = 0;
      for (float l : labels) foreground += is_foreground(l);
      const int64_t stride = std::max<int64_t>(1, (foreground + per_case - 1) / per_case);
      int64_t seen = 0;
      for (size_t v = 0; v < labels.size(); ++v) {
        if (is_foreground(labels[v]) && seen++ % stride == 0) values.push_back(image[v]);
      }
    }
    if (values.empty()) {
      SPVIT_THROW(DataError, "NIfTI dataset '", info.root, "': CT channel ", ch, " (", info.channel_names[ch],
                  ") needs foreground voxels for its statistics, and the training cases' labels have none");
    }
    double s = 0, s2 = 0;
    for (float v : values) s += v, s2 += static_cast<double>(v) * v;
    auto& c = n.channels[ch];
    const double count = static_cast<double>(values.size());
    c.mean = s / count;
    c.std = std::sqrt(std::max(0.0, s2 / count - c.mean * c.mean));
    c.low = percentile(values, 0.005);
    c.high = percentile(values, 0.995);
  }
  return n;
}

torch::Tensor NiftiNormalization::apply(torch::Tensor values, int64_t channel, double case_mean,
                                        double case_std) const {
  const auto& c = channels.at(static_cast<size_t>(channel));
  if (c.scheme == "none") return values;
  if (c.scheme == "ct") return values.clamp_(c.low, c.high).sub_(c.mean).div_(std::max(c.std, 1e-8));
  return values.sub_(case_mean).div_(std::max(case_std, 1e-8));
}

std::string NiftiNormalization::to_json() const {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& c : channels) {
    j.push_back({{"scheme", c.scheme}, {"mean", c.mean}, {"std", c.std}, {"low", c.low}, {"high", c.high}});
  }
  return j.dump();
}

NiftiNormalization NiftiNormalization::from_json(const std::string& json) {
  NiftiNormalization n;
  try {
    for (const auto& c : nlohmann::json::parse(json)) {
      n.channels.push_back({c.at("scheme").get<std::string>(), c.at("mean").get<double>(), c.at("std").get<double>(),
                            c.at("low").get<double>(), c.at("high").get<double>()});
    }
  } catch (const nlohmann::json::exception& e) {
    SPVIT_THROW(DataError, "NIfTI normalisation statistics do not parse: ", e.what());
  }
  return n;
}

}  // namespace spvit::data

// NiftiDatasetInfo: which cases, channels and labels a NIfTI dataset folder holds (MSD or nnU-Net v2 dataset.json),
// and its folds.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "spvit/core/error.h"
#include "spvit/data/nifti_dataset.h"
#include "spvit/data/nifti_resampled.h"

namespace fs = std::filesystem;

namespace spvit::data {
namespace {

nlohmann::json read_json(const fs::path& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) SPVIT_THROW(DataError, what, " '", path.string(), "' does not exist or cannot be read");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    SPVIT_THROW(DataError, what, " '", path.string(), "' is not valid JSON: ", e.what());
  }
}

// {"0": "FLAIR", "1": "T1w"} -> {"FLAIR", "T1w"}: keys are channel indices 0..n-1.
std::vector<std::string> indexed_names(const nlohmann::json& j, const fs::path& file, const std::string& key) {
  if (!j.is_object() || j.empty()) SPVIT_THROW(DataError, "'", file.string(), "': '", key, "' must be a non-empty object");
  std::vector<std::string> names(j.size());
  for (const auto& [k, v] : j.items()) {
    size_t used = 0;
    long long i = -1;
    try {
      i = std::stoll(k, &used);
    } catch (const std::exception&) {
    }
    if (used != k.size() || i < 0 || i >= static_cast<long long>(j.size()) || !v.is_string()) {
      SPVIT_THROW(DataError, "'", file.string(), "': '", key, "' must map channel indices 0..", j.size() - 1,
                  " to names, got \"", k, "\": ", v.dump());
    }
    names[static_cast<size_t>(i)] = v.get<std::string>();
  }
  return names;
}

std::string resolve(const fs::path& root, const std::string& p) {
  const fs::path path(p);
  return (path.is_absolute() ? path : root / path).lexically_normal().string();
}

void require_file(const std::string& path, const std::string& case_name, const std::string& what) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    SPVIT_THROW(DataError, "case '", case_name, "': ", what, " '", path, "' does not exist");
  }
}

void read_msd(const nlohmann::json& j, const fs::path& file, NiftiDatasetInfo& info) {
  info.layout = "msd";
  info.channel_names = indexed_names(j.at("modality"), file, "modality");
  // MSD maps values to names: {"0": "background", "1": "edema"}.
  for (const auto& [k, v] : j.at("labels").items()) {
    size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(k, &used);
    } catch (const std::exception&) {
    }
    if (!v.is_string() || used != k.size()) {
      SPVIT_THROW(DataError, "'", file.string(), "': labels must map label values to class names, got \"", k, "\": ",
                  v.dump());
    }
    info.labels[v.get<std::string>()] = value;
  }
  const auto& training = j.at("training");
  if (!training.is_array()) SPVIT_THROW(DataError, "'", file.string(), "': 'training' must be a list");
  for (size_t i = 0; i < training.size(); ++i) {
    const auto& t = training[i];
    if (!t.is_object() || !t.contains("image") || !t["image"].is_string()) {
      SPVIT_THROW(DataError, "'", file.string(), "': training entry ", i, " has no \"image\" path");
    }
    NiftiCase c;
    c.images = {resolve(info.root, t["image"].get<std::string>())};
    std::string stem = fs::path(c.images[0]).filename().string();
    for (const char* ext : {".nii.gz", ".nii"}) {
      const std::string e(ext);
      if (stem.size() > e.size() && stem.compare(stem.size() - e.size(), e.size(), e) == 0) {
        stem.resize(stem.size() - e.size());
        break;
      }
    }
    c.name = stem;
    if (t.contains("label") && t["label"].is_string()) c.label = resolve(info.root, t["label"].get<std::string>());
    require_file(c.images[0], c.name, "image");
    if (c.label.empty()) SPVIT_THROW(DataError, "'", file.string(), "': training case '", c.name, "' has no label");
    require_file(c.label, c.name, "label");
    info.cases.push_back(std::move(c));
  }
}

void read_nnunet(const nlohmann::json& j, const fs::path& file, NiftiDatasetInfo& info) {
  info.layout = "nnunet";
  info.channel_names = indexed_names(j.at("channel_names"), file, "channel_names");
  // nnU-Net v2 maps names to values; a list value is a region (a union of labels, for region-based training, as
  // BraTS): its members are label values too, named "label <v>" unless another entry names them.
  std::map<int64_t, std::string> named;
  for (const auto& [k, v] : j.at("labels").items()) {
    if (v.is_number_integer()) info.labels[k] = v.get<int64_t>(), named[v.get<int64_t>()] = k;
  }
  for (const auto& [k, v] : j.at("labels").items()) {
    if (!v.is_array()) continue;
    auto& region = info.regions[k];
    for (const auto& member : v) {
      if (!member.is_number_integer()) {
        SPVIT_THROW(DataError, "'", file.string(), "': region '", k, "' must list label values, got ", member.dump());
      }
      const auto value = member.get<int64_t>();
      region.push_back(value);
      if (!named.count(value)) info.labels["label " + std::to_string(value)] = value, named[value] = k;
    }
  }
  if (j.contains("file_ending")) info.file_ending = j["file_ending"].get<std::string>();
  const fs::path labels = fs::path(info.root) / "labelsTr";
  std::error_code ec;
  if (!fs::is_directory(labels, ec)) {
    SPVIT_THROW(DataError, "nnU-Net dataset '", info.root, "' has no labelsTr/ folder");
  }
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(labels)) {
    const std::string f = e.path().filename().string();
    const auto& end = info.file_ending;
    if (f.size() > end.size() && f.compare(f.size() - end.size(), end.size(), end) == 0 && f.front() != '.') {
      names.push_back(f.substr(0, f.size() - end.size()));
    }
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    NiftiCase c;
    c.name = name;
    c.label = (labels / (name + info.file_ending)).string();
    for (size_t ch = 0; ch < info.channel_names.size(); ++ch) {
      char suffix[16];
      std::snprintf(suffix, sizeof suffix, "_%04zu", ch);
      c.images.push_back((fs::path(info.root) / "imagesTr" / (name + suffix + info.file_ending)).string());
      require_file(c.images.back(), name, "channel " + std::to_string(ch) + " (" + info.channel_names[ch] + ") file");
    }
    info.cases.push_back(std::move(c));
  }
}

}  // namespace

NiftiDatasetInfo NiftiDatasetInfo::read(const std::string& root) {
  NiftiDatasetInfo info;
  info.root = root;
  const fs::path file = fs::path(root) / "dataset.json";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) SPVIT_THROW(DataError, "NIfTI dataset folder '", root, "' does not exist");
  const auto j = read_json(file, "NIfTI dataset description");
  try {
    if (j.contains("channel_names")) {
      read_nnunet(j, file, info);
    } else if (j.contains("modality") && j.contains("training")) {
      read_msd(j, file, info);
    } else {
      SPVIT_THROW(DataError, "'", file.string(), "' is neither an nnU-Net v2 dataset.json (channel_names, labels, "
                  "file_ending) nor a Medical Segmentation Decathlon one (modality, labels, training)");
    }
  } catch (const nlohmann::json::exception& e) {
    SPVIT_THROW(DataError, "'", file.string(), "': ", e.what());
  }
  if (info.cases.empty()) SPVIT_THROW(DataError, "NIfTI dataset '", root, "' lists no labelled training case");
  if (!info.labels.count("background") && !std::any_of(info.labels.begin(), info.labels.end(),
                                                      [](const auto& l) { return l.second == 0; })) {
    SPVIT_THROW(DataError, "'", file.string(), "': labels must include the background, value 0");
  }
  for (const auto& [name, value] : info.labels) {
    if (value < 0 || value > 255) {
      SPVIT_THROW(DataError, "'", file.string(), "': label '", name, "' = ", value, " must be from 0 to 255");
    }
  }
  if (const auto it = info.labels.find("ignore"); it != info.labels.end()) {
    info.ignore_label = it->second;
    info.labels.erase(it);
    for (const auto& [name, value] : info.labels) {
      if (value >= info.ignore_label) {
        SPVIT_THROW(DataError, "'", file.string(), "': the ignore label (", info.ignore_label, ") must be the highest "
                    "value, as nnU-Net requires, but '", name, "' = ", value);
      }
    }
  }
  std::sort(info.cases.begin(), info.cases.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return info;
}

int64_t NiftiDatasetInfo::num_classes() const {
  int64_t top = 0;
  for (const auto& l : labels) top = std::max(top, l.second);
  return top + 1;
}

std::vector<NiftiCase> NiftiDatasetInfo::split(const std::string& split, int64_t fold) const {
  SPVIT_CHECK(split == "train" || split == "val", "NIfTI split must be train or val, got '", split, "'");
  const fs::path file = fs::path(root) / "splits_final.json";
  std::vector<NiftiCase> out;
  std::error_code ec;
  if (fs::exists(file, ec)) {
    const auto j = read_json(file, "fold file");
    if (!j.is_array() || fold < 0 || fold >= static_cast<int64_t>(j.size())) {
      SPVIT_THROW(ConfigError, "config key 'data.fold' = ", fold, ": '", file.string(), "' holds ",
                  j.is_array() ? j.size() : 0, " fold(s)");
    }
    const auto& names = j[static_cast<size_t>(fold)].at(split);
    for (const auto& n : names) {
      const auto name = n.get<std::string>();
      const auto it = std::find_if(cases.begin(), cases.end(), [&](const NiftiCase& c) { return c.name == name; });
      if (it == cases.end()) {
        SPVIT_THROW(DataError, "'", file.string(), "' fold ", fold, " names case '", name, "', which '", root,
                    "' does not have");
      }
      out.push_back(*it);
    }
    return out;
  }
  constexpr int64_t kFolds = 5;
  if (fold < 0 || fold >= kFolds) {
    SPVIT_THROW(ConfigError, "config key 'data.fold' = ", fold, " must be 0 to 4 (5 folds; '", file.string(),
                "' does not exist)");
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const bool val = static_cast<int64_t>(i) % kFolds == fold;
    if (val == (split == "val")) out.push_back(cases[i]);
  }
  return out;
}

NiftiDatasetOptions NiftiDatasetOptions::from_config(const DataConfig& d, const std::string& path,
                                                     const std::string& split, int64_t count, uint64_t seed) {
  NiftiDatasetOptions o;
  o.info = NiftiDatasetInfo::read(path);
  o.cases = o.info.split(split, d.fold);
  o.normalization_cases = o.info.split("train", d.fold);
  if (split == "train" && o.cases.empty()) {
    SPVIT_THROW(DataError, "NIfTI dataset '", path, "' has no training case in fold ", d.fold);
  }
  o.cache_dir = d.cache_dir;
  o.spacing = target_spacing(d);
  o.size = d.size;
  o.count = count;
  o.fixed = split != "train";
  o.seed = seed;
  return o;
}

}  // namespace spvit::data

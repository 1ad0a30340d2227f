// 3D inference on NIfTI volumes (volume.h): inputs, resampling both ways, normalisation, the label map's summary.
#include "spvit/infer/volume.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <regex>
#include <set>

#include "spvit/core/error.h"
#include "spvit/data/nifti_resampled.h"
#include "spvit/data/volume_resample.h"

namespace fs = std::filesystem;

namespace spvit::infer {
namespace {

constexpr int64_t kStatisticsSlices = 16;  // slices per read while a case's intensity statistics are summed

// "CASE.nii.gz" -> {"CASE", ".nii.gz"}; {"", ""} for a file that is not NIfTI.
std::pair<std::string, std::string> split_nifti_name(const std::string& filename) {
  for (const std::string ending : {".nii.gz", ".nii"}) {
    if (filename.size() > ending.size() && filename.compare(filename.size() - ending.size(), ending.size(), ending) == 0) {
      return {filename.substr(0, filename.size() - ending.size()), ending};
    }
  }
  return {"", ""};
}

// nnU-Net channel files end in _XXXX (four digits): {base, channel}, or {stem, -1}.
std::pair<std::string, int64_t> channel_of(const std::string& stem) {
  static const std::regex pattern("(.+)_([0-9]{4})");
  std::smatch m;
  if (std::regex_match(stem, m, pattern)) return {m[1].str(), std::stoll(m[2].str())};
  return {stem, -1};
}

data::NiftiCase channel_files(const fs::path& folder, const std::string& base, const std::string& ending,
                              int64_t channels) {
  data::NiftiCase c;
  c.name = base;
  for (int64_t ch = 0; ch < channels; ++ch) {
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "_%04lld", static_cast<long long>(ch));
    const auto path = folder / (base + suffix + ending);
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      SPVIT_THROW(DataError, "case '", base, "': channel ", ch, " file '", path.string(), "' does not exist (the model "
                  "takes ", channels, " channel(s): ", base, "_0000", ending, " to ", base, suffix, ending, ")");
    }
    c.images.push_back(path.string());
  }
  return c;
}

std::array<int64_t, 3> tensor_shape(const data::NiftiHeader& h) { return {h.shape.at(2), h.shape.at(1), h.shape.at(0)}; }

}  // namespace

std::vector<LabelRegion> evaluation_regions(const DataConfig& data,
                                            const std::map<std::string, std::vector<int64_t>>& dataset_regions,
                                            int64_t classes) {
  std::vector<LabelRegion> out;
  std::set<std::string> named;
  for (const auto& [name, text] : data.regions) {
    LabelRegion r{name, {}};
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
      char* end = nullptr;
      const long long v = std::strtoll(item.c_str(), &end, 10);
      while (end && *end == ' ') ++end;
      if (end == item.c_str() || *end != '\0' || v < 1 || v >= classes) {
        SPVIT_THROW(ConfigError, "data.regions: region '", name, "' = '", text, "' must list label values from 1 to ",
                    classes - 1, " separated by commas (e.g. \"1,2,3\")");
      }
      r.labels.push_back(v);
    }
    if (r.labels.empty()) SPVIT_THROW(ConfigError, "data.regions: region '", name, "' lists no label");
    named.insert(name);
    out.push_back(std::move(r));
  }
  for (const auto& [name, labels] : dataset_regions) {
    if (named.count(name)) continue;
    std::vector<int64_t> valid;
    for (auto v : labels) {
      if (v >= 1 && v < classes) valid.push_back(v);
    }
    if (!valid.empty()) out.push_back({name, valid});
  }
  return out;
}

VolumeModelData VolumeModelData::from_checkpoint(const std::string& statistics_json, const Config& config,
                                                 int64_t classes) {
  if (statistics_json.empty() || config.data.source != "nifti") {
    SPVIT_THROW(DataError, "the checkpoint was not trained on NIfTI volumes (data.source: ", config.data.source,
                "): it holds no intensity statistics for 3D inference");
  }
  VolumeModelData m;
  std::map<std::string, std::vector<int64_t>> dataset_regions;
  std::map<std::string, int64_t> labels;
  try {
    const auto j = nlohmann::json::parse(statistics_json);
    m.normalization = data::NiftiNormalization::from_json(j.at("normalization").dump());
    m.channel_names = j.at("channel_names").get<std::vector<std::string>>();
    labels = j.at("labels").get<std::map<std::string, int64_t>>();
    dataset_regions = j.at("regions").get<std::map<std::string, std::vector<int64_t>>>();
    m.ignore_label = j.value("ignore_label", int64_t{-1});
  } catch (const nlohmann::json::exception& e) {
    SPVIT_THROW(DataError, "the checkpoint's NIfTI statistics do not parse: ", e.what());
  }
  m.class_names.resize(static_cast<size_t>(classes));
  for (const auto& [name, value] : labels) {
    if (value >= 0 && value < classes) m.class_names[static_cast<size_t>(value)] = name;
  }
  for (int64_t v = 0; v < classes; ++v) {
    auto& n = m.class_names[static_cast<size_t>(v)];
    if (n.empty()) n = v == 0 ? "background" : "label " + std::to_string(v);
  }
  m.regions = evaluation_regions(config.data, dataset_regions, classes);
  m.spacing = data::target_spacing(config.data);
  m.window = config.data.size;
  return m;
}

std::vector<data::NiftiCase> volume_cases(const std::string& input, int64_t channels) {
  std::error_code ec;
  const fs::path path(input);
  if (fs::is_directory(path, ec)) {
    std::vector<std::pair<std::string, std::string>> files;  // stem, ending
    for (const auto& e : fs::directory_iterator(path)) {
      const auto [stem, ending] = split_nifti_name(e.path().filename().string());
      if (!stem.empty() && stem.front() != '.' && e.is_regular_file()) files.emplace_back(stem, ending);
    }
    std::sort(files.begin(), files.end());
    std::vector<data::NiftiCase> cases;
    for (const auto& [stem, ending] : files) {
      const auto [base, channel] = channel_of(stem);
      if (channel > 0) continue;  // part of the case its _0000 file starts
      cases.push_back(channel == 0 ? channel_files(path, base, ending, channels)
                                   : data::NiftiCase{stem, {(path / (stem + ending)).string()}, ""});
    }
    if (cases.empty()) SPVIT_THROW(DataError, "folder '", input, "' holds no NIfTI file (.nii, .nii.gz)");
    return cases;
  }
  if (!fs::is_regular_file(path, ec)) SPVIT_THROW(DataError, "input '", input, "' does not exist");
  const auto [stem, ending] = split_nifti_name(path.filename().string());
  if (stem.empty()) SPVIT_THROW(DataError, "input '", input, "' is not a NIfTI file (.nii, .nii.gz)");
  const auto [base, channel] = channel_of(stem);
  if (channel >= 0) return {channel_files(path.parent_path(), base, ending, channels)};
  return {data::NiftiCase{stem, {input}, ""}};
}

VolumeSegmentation segment_volume(const data::NiftiCase& c, const VolumeModelData& model, int64_t classes,
                                  const VolumePredictor& predict, VolumeWindowOptions options) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto C = static_cast<int64_t>(model.channel_names.size());
  VolumeSegmentation out;
  out.header = data::read_nifti_header(c.images.at(0));
  const auto& h = out.header;
  // The files must hold the model's channels on one voxel grid.
  std::vector<std::pair<std::string, int64_t>> sources;  // (file, channel in it)
  for (const auto& path : c.images) {
    const auto ih = path == c.images[0] ? h : data::read_nifti_header(path);
    if (std::vector<int64_t>(ih.shape.begin(), ih.shape.begin() + 3) != std::vector<int64_t>(h.shape.begin(), h.shape.begin() + 3)) {
      SPVIT_THROW(DataError, "case '", c.name, "': channel file '", path, "' has a different shape from '",
                  c.images[0], "'");
    }
    for (int64_t ch = 0; ch < ih.channels(); ++ch) sources.emplace_back(path, c.images.size() == 1 ? ch : 0);
  }
  if (static_cast<int64_t>(sources.size()) != C) {
    std::string names;
    for (const auto& n : model.channel_names) names += (names.empty() ? "" : ", ") + n;
    SPVIT_THROW(DataError, "case '", c.name, "' has ", sources.size(), " channel(s) but the model takes ", C, " (",
                names, ")");
  }
  const auto shape = tensor_shape(h);
  const auto grid = model.spacing && !data::has_spacing(h, *model.spacing)
                        ? data::resample_grid(h, *model.spacing)
                        : data::ResampleGrid{shape, shape, {1, 1, 1}};
  out.model_shape = grid.out_shape;
  const auto read_channel = [&](int64_t ch, int64_t z0, int64_t z1) {
    const auto& [path, index] = sources[static_cast<size_t>(ch)];
    return data::read_resampled_slab(path, index, grid, z0, z1, data::Interpolation::linear);
  };
  // Each channel's mean and std over the case (on the grid the model sees), as training computed them.
  std::vector<double> mean(static_cast<size_t>(C), 0.0), stdev(static_cast<size_t>(C), 1.0);
  for (int64_t ch = 0; ch < C; ++ch) {
    if (model.normalization.channels.at(static_cast<size_t>(ch)).scheme != "zscore") continue;
    double s = 0, s2 = 0;
    for (int64_t z = 0; z < grid.out_shape[0]; z += kStatisticsSlices) {
      const auto v = read_channel(ch, z, std::min(grid.out_shape[0], z + kStatisticsSlices)).to(torch::kFloat64);
      s += v.sum().item<double>();
      s2 += v.pow(2).sum().item<double>();
    }
    const double n = static_cast<double>(grid.out_shape[0] * grid.out_shape[1] * grid.out_shape[2]);
    mean[static_cast<size_t>(ch)] = s / n;
    stdev[static_cast<size_t>(ch)] = std::sqrt(std::max(0.0, s2 / n - (s / n) * (s / n)));
  }
  const VolumeSliceReader reader = [&](int64_t z0, int64_t z1) {
    std::vector<torch::Tensor> channels;
    for (int64_t ch = 0; ch < C; ++ch) {
      channels.push_back(model.normalization.apply(read_channel(ch, z0, z1), ch, mean[static_cast<size_t>(ch)],
                                                   stdev[static_cast<size_t>(ch)]));
    }
    return torch::stack(channels).to(torch::kFloat32);
  };
  // Probabilities back to the input grid (linear), then the argmax, as the finished slices arrive.
  const auto back = grid.inverse();
  out.labels = torch::zeros({shape[0], shape[1], shape[2]}, torch::kUInt8);
  torch::Tensor held;  // [K, n, H', W'] model-grid slices [held0, held0 + n)
  int64_t held0 = 0, next = 0;
  const VolumeSliceSink sink = [&](int64_t z0, const torch::Tensor& probs) {
    if (!held.defined()) {
      held = probs;
      held0 = z0;
    } else {
      SPVIT_CHECK(z0 == held0 + held.size(1), "volume slices out of order: ", z0, " after ", held0 + held.size(1));
      held = torch::cat({held, probs}, 1);
    }
    const int64_t held_end = held0 + held.size(1);
    const auto ready = [&](int64_t o1) { return back.input_slices(next, o1).second <= held_end; };
    if (next >= shape[0] || !ready(next + 1)) return;
    int64_t o1 = next + 1;
    while (o1 < shape[0] && ready(o1 + 1)) ++o1;
    const auto p = data::resample_slab(held, held0, back, next, o1, data::Interpolation::linear);
    out.labels.narrow(0, next, o1 - next).copy_(p.argmax(0).to(torch::kUInt8));
    next = o1;
    if (next < shape[0]) {  // drop the slices no later output slice reads
      const int64_t keep_from = back.input_slices(next, next + 1).first;
      held = held.narrow(1, keep_from - held0, held_end - keep_from).clone();
      held0 = keep_from;
    }
  };
  options.window = model.window;
  out.windows = run_volume_windows(grid.out_shape, C, classes, reader, predict, options, sink);
  SPVIT_CHECK(next == shape[0], "case '", c.name, "': ", next, " of ", shape[0], " slices were labelled");
  out.seconds = std::chrono::duration<double>(clock::now() - start).count();
  return out;
}

torch::Tensor label_voxels(const torch::Tensor& labels, int64_t classes) {
  return torch::bincount(labels.flatten().to(torch::kLong), {}, classes);
}

bool is_volume_input(const std::string& input) {
  std::error_code ec;
  if (fs::is_directory(input, ec)) {
    for (const auto& e : fs::directory_iterator(input, ec)) {
      if (!split_nifti_name(e.path().filename().string()).first.empty()) return true;
    }
    return false;
  }
  return !split_nifti_name(fs::path(input).filename().string()).first.empty();
}

nlohmann::json volume_summary(const data::NiftiHeader& header, const torch::Tensor& voxels,
                              const VolumeModelData& model) {
  const auto K = static_cast<int64_t>(model.class_names.size());
  const auto counts = voxels.to(torch::kLong);
  SPVIT_CHECK(counts.numel() == K, "volume_summary: ", counts.numel(), " counts for ", K, " classes");
  const auto& sp = header.spacing;
  const double ml_per_voxel = sp[0] * sp[1] * sp[2] / 1000.0;
  nlohmann::json j;
  j["shape"] = std::vector<int64_t>(header.shape.begin(), header.shape.begin() + 3);
  j["spacing_mm"] = std::vector<double>(sp.begin(), sp.end());
  for (int64_t v = 0; v < K; ++v) {
    const auto n = counts[v].item<int64_t>();
    j["voxels"][model.class_names[static_cast<size_t>(v)]] = n;
    j["volume_ml"][model.class_names[static_cast<size_t>(v)]] = static_cast<double>(n) * ml_per_voxel;
  }
  j["regions_ml"] = nlohmann::json::object();
  for (const auto& r : model.regions) {
    int64_t n = 0;
    for (auto v : r.labels) n += counts[v].item<int64_t>();
    j["regions_ml"][r.name] = static_cast<double>(n) * ml_per_voxel;
  }
  return j;
}

}  // namespace spvit::infer

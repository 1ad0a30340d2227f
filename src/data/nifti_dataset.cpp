// NiftiDataset: crops of NIfTI volumes (nifti_dataset.h), each rank reading only its slab.
#include "spvit/data/nifti_dataset.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/data/annotations.h"
#include "spvit/data/hash.h"
#include "spvit/data/nifti_resampled.h"
#include "nifti_cache.h"

namespace fs = std::filesystem;

namespace spvit::data {

namespace {

constexpr int64_t kForegroundPositions = 10000;  // per case and class, evenly spaced over the class's voxels
constexpr double kForegroundFraction = 1.0 / 3;  // samples centred on foreground (nnU-Net's oversampling)

// Where channel c of a case lives: its own file (nnU-Net) or the 4th axis of the case's one file (MSD).
std::pair<std::string, int64_t> channel_source(const NiftiCase& c, int64_t channel) {
  if (c.images.size() == 1) return {c.images[0], channel};
  return {c.images.at(static_cast<size_t>(channel)), 0};
}

bool same_geometry(const NiftiHeader& a, const NiftiHeader& b) {
  for (int r = 0; r < 3; ++r) {
    for (int k = 0; k < 4; ++k) {
      const double x = a.affine[r][k], y = b.affine[r][k];
      if (std::abs(x - y) > 1e-3 * std::max({1.0, std::abs(x), std::abs(y)})) return false;
    }
  }
  return true;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out;
}

}  // namespace

struct NiftiDataset::CaseState {
  NiftiCase files;
  NiftiHeader header;                  // the label file's (shape i, j, k; geometry)
  std::array<int64_t, 3> shape{};      // tensor order: k, j, i
  std::vector<double> mean, std;       // per channel, over the case's voxels
  std::map<int64_t, std::vector<std::array<int64_t, 3>>> foreground;  // class -> positions (k, j, i)
  std::map<int64_t, int64_t> label_counts;  // label value -> voxels
  mutable std::atomic<int64_t> voxels_read{0};
};

namespace {

// Statistics of one case: each channel's mean and std, and evenly spaced positions of each label value > 0;
// label values dataset.json does not list are a DataError naming the case.
nlohmann::json case_statistics(const NiftiCase& c, const NiftiDatasetInfo& info) {
  nlohmann::json j;
  const auto labels = read_nifti(c.label);
  const auto h = read_nifti_header(c.label);
  const int64_t I = h.shape[0], J = h.shape[1];
  std::map<int64_t, int64_t> counts;
  for (float v : labels) {
    const auto l = static_cast<int64_t>(std::lround(v));
    if (l == info.ignore_label) continue;  // neither a class nor foreground
    if (l != v || l < 0 || l >= info.num_classes() ||
        std::none_of(info.labels.begin(), info.labels.end(), [&](const auto& e) { return e.second == l; })) {
      SPVIT_THROW(DataError, "case '", c.name, "': label file '", c.label, "' holds the value ", v,
                  ", which dataset.json's labels do not list");
    }
    ++counts[l];
  }
  for (const auto& [label, n] : counts) j["counts"][std::to_string(label)] = n;
  for (const auto& [label, n] : counts) {
    if (label == 0) continue;
    const int64_t stride = std::max<int64_t>(1, (n + kForegroundPositions - 1) / kForegroundPositions);
    nlohmann::json positions = nlohmann::json::array();
    int64_t seen = 0;
    for (size_t v = 0; v < labels.size(); ++v) {
      if (std::lround(labels[v]) != label) continue;
      if (seen++ % stride != 0) continue;
      const auto idx = static_cast<int64_t>(v);
      positions.push_back({idx / (I * J), (idx / I) % J, idx % I});
    }
    j["foreground"][std::to_string(label)] = positions;
  }
  for (int64_t ch = 0; ch < info.channels(); ++ch) {
    const auto [path, index] = channel_source(c, ch);
    const auto header = read_nifti_header(path);
    const auto v = read_nifti_slab(path, 0, header.shape[2], index);
    double s = 0, s2 = 0;
    for (float x : v) s += x, s2 += static_cast<double>(x) * x;
    const double n = static_cast<double>(v.size()), mean = s / n;
    j["mean"].push_back(mean);
    j["std"].push_back(std::sqrt(std::max(0.0, s2 / n - mean * mean)));
  }
  return j;
}

}  // namespace

NiftiDataset::NiftiDataset(NiftiDatasetOptions options) : options_(std::move(options)) {
  const auto& info = options_.info;
  if (options_.cases.empty()) SPVIT_THROW(DataError, "NIfTI dataset '", info.root, "': this split has no case");
  const std::string cache = options_.cache_dir.empty() ? "" : options_.cache_dir + "/nifti";
  // data.spacing: every case (and those the CT statistics come from) read from its resampled copy.
  if (options_.spacing) {
    for (auto* list : {&options_.cases, &options_.normalization_cases}) {
      for (auto& c : *list) c = resampled_case(c, info, *options_.spacing, options_.cache_dir);
    }
  }
  std::vector<std::string> spacings;
  for (const auto& c : options_.cases) {
    auto st = std::make_unique<CaseState>();
    st->files = c;
    st->header = read_nifti_header(c.label);
    const auto& h = st->header;
    if (h.shape.size() != 3) {
      SPVIT_THROW(DataError, "case '", c.name, "': label file '", c.label, "' has shape ", shape_text(h.shape),
                  ", not a 3-D volume");
    }
    // Every image file: the label's voxel grid and geometry, and the channels dataset.json names.
    for (const auto& path : c.images) {
      const auto ih = read_nifti_header(path);
      const std::vector<int64_t> spatial(ih.shape.begin(), ih.shape.begin() + 3);
      if (spatial != h.shape) {
        SPVIT_THROW(DataError, "case '", c.name, "': image '", path, "' has shape ", shape_text(ih.shape),
                    " but its label '", c.label, "' has ", shape_text(h.shape));
      }
      if (!same_geometry(ih, h)) {
        SPVIT_THROW(DataError, "case '", c.name, "': image '", path, "' and label '", c.label,
                    "' have different affines (voxel to world): they do not describe the same voxels");
      }
      const int64_t expected = c.images.size() == 1 ? info.channels() : 1;
      if (ih.channels() != expected) {
        SPVIT_THROW(DataError, "case '", c.name, "': image '", path, "' holds ", ih.channels(), " channel(s), ",
                    "dataset.json names ", expected);
      }
    }
    st->shape = {h.shape[2], h.shape[1], h.shape[0]};
    char sp[96];
    std::snprintf(sp, sizeof sp, "%.4g x %.4g x %.4g", h.spacing[0], h.spacing[1], h.spacing[2]);
    spacings.push_back(sp);
    // Per-case statistics, cached under a key of the case's files.
    // bump the constant when the statistics change
    const uint64_t key = nifti_cache::case_key(hash_key({0x5a12u, nifti_cache::text_key(info)}), c);
    const std::string cache_file = cache.empty() ? "" : cache + "/" + c.name + "-" + nifti_cache::hex(key) + ".json";
    auto stats = cache_file.empty() ? std::nullopt : nifti_cache::read_json(cache_file);
    if (!stats) {
      stats = case_statistics(c, info);
      if (!cache_file.empty()) nifti_cache::write_json(cache_file, *stats);
    }
    st->mean = (*stats)["mean"].get<std::vector<double>>();
    st->std = (*stats)["std"].get<std::vector<double>>();
    if (stats->contains("counts")) {
      for (const auto& [label, n] : (*stats)["counts"].items()) st->label_counts[std::stoll(label)] = n.get<int64_t>();
    }
    if (stats->contains("foreground")) {
      for (const auto& [label, positions] : (*stats)["foreground"].items()) {
        auto& out = st->foreground[std::stoll(label)];
        for (const auto& p : positions) out.push_back({p[0].get<int64_t>(), p[1].get<int64_t>(), p[2].get<int64_t>()});
      }
    }
    cases_.push_back(std::move(st));
  }
  // One voxel spacing for the whole dataset (data.spacing would resample; without it mixed spacings are refused).
  std::vector<std::string> offenders;
  for (size_t i = 0; i < spacings.size(); ++i) {
    const auto& a = cases_[0]->header.spacing;
    const auto& b = cases_[i]->header.spacing;
    bool same = true;
    for (int k = 0; k < 3; ++k) same = same && std::abs(a[k] - b[k]) <= 1e-3 * std::max(a[k], b[k]);
    if (!same) offenders.push_back(options_.cases[i].name + " (" + spacings[i] + " mm)");
  }
  if (!offenders.empty()) {
    std::string list;
    for (const auto& o : offenders) list += (list.empty() ? "" : ", ") + o;
    SPVIT_THROW(DataError, "NIfTI dataset '", info.root, "' mixes voxel spacings: ", options_.cases[0].name, " has ",
                spacings[0], " mm but ", list, " differ; set data.spacing to resample them to one spacing");
  }
  // Normalisation: CT statistics over the training cases, cached like the cases'.
  if (!options_.normalize) return;
  const auto& statistics_cases = options_.normalization_cases.empty() ? options_.cases : options_.normalization_cases;
  uint64_t key = hash_key({0xc7u, nifti_cache::text_key(info)});
  for (const auto& c : statistics_cases) key = nifti_cache::case_key(key, c);
  const std::string norm_file = cache.empty() ? "" : cache + "/normalization-" + nifti_cache::hex(key) + ".json";
  if (auto cached = norm_file.empty() ? std::nullopt : nifti_cache::read_json(norm_file)) {
    normalization_ = NiftiNormalization::from_json(cached->dump());
  } else {
    normalization_ = NiftiNormalization::compute(info, statistics_cases);
    if (!norm_file.empty()) nifti_cache::write_json(norm_file, nlohmann::json::parse(normalization_.to_json()));
  }
}

NiftiDataset::~NiftiDataset() = default;

const NiftiHeader& NiftiDataset::header(int64_t case_index) const {
  return cases_.at(static_cast<size_t>(case_index))->header;
}

std::map<int64_t, int64_t> NiftiDataset::label_counts(int64_t case_index) const {
  return cases_.at(static_cast<size_t>(case_index))->label_counts;
}

int64_t NiftiDataset::voxels_read() const {
  int64_t n = 0;
  for (const auto& c : cases_) n += c->voxels_read.load();
  return n;
}

NiftiPlacement NiftiDataset::placement(int64_t index, int64_t epoch) const {
  check_index(*this, index);
  const uint64_t key = hash_key({options_.seed, options_.fixed ? 0 : static_cast<uint64_t>(epoch) + 1,
                                 static_cast<uint64_t>(index), 0x3du});
  HashStream s(key);
  NiftiPlacement p;
  p.case_index = std::min<int64_t>(case_count() - 1, static_cast<int64_t>(s.uniform() * case_count()));
  const auto& st = *cases_[static_cast<size_t>(p.case_index)];
  const int64_t S = options_.size;
  std::array<double, 3> centre{};
  if (s.bernoulli(kForegroundFraction) && !st.foreground.empty()) {
    auto it = st.foreground.begin();
    std::advance(it, std::min<int64_t>(static_cast<int64_t>(st.foreground.size()) - 1,
                                       static_cast<int64_t>(s.uniform() * static_cast<double>(st.foreground.size()))));
    const auto& positions = it->second;
    const auto& v = positions[std::min(positions.size() - 1, static_cast<size_t>(s.uniform() * positions.size()))];
    for (int d = 0; d < 3; ++d) centre[d] = static_cast<double>(v[d]) + 0.5;
  } else {
    for (int d = 0; d < 3; ++d) centre[d] = s.uniform() * static_cast<double>(st.shape[d]);
  }
  for (int d = 0; d < 3; ++d) {
    const int64_t n = st.shape[d];
    // A crop larger than the volume sits in its middle; otherwise it stays inside the volume.
    p.origin[d] = n <= S ? -(S - n) / 2
                         : std::clamp<int64_t>(static_cast<int64_t>(std::floor(centre[d])) - S / 2, 0, n - S);
  }
  return p;
}

Sample NiftiDataset::read_epoch(int64_t index, int64_t epoch, const std::optional<Region>& region) const {
  const auto p = placement(index, epoch);
  const auto& st = *cases_[static_cast<size_t>(p.case_index)];
  const int64_t S = options_.size, C = channels();
  const Region r = region ? *region : full_region({S, S, S});
  SPVIT_CHECK(contains(full_region({S, S, S}), r), "NIfTI sample region ", to_string(r), " outside the ", S, "³ crop");
  Sample out;
  out.region = r;
  out.full_shape = {S, S, S};
  out.id = st.files.name + "_" + std::to_string(index);
  out.image = torch::zeros({r.extent(0), r.extent(1), r.extent(2), C}, torch::kFloat32);
  out.mask = torch::full({r.extent(0), r.extent(1), r.extent(2)}, ClassMap::kIgnore, torch::kInt16);
  // The part of the region inside the volume: [lo, hi) in volume voxels, tensor order.
  std::array<int64_t, 3> lo{}, hi{};
  for (int d = 0; d < 3; ++d) {
    lo[d] = std::max<int64_t>(0, p.origin[d] + r.begin[d]);
    hi[d] = std::min<int64_t>(st.shape[d], p.origin[d] + r.end[d]);
    if (hi[d] <= lo[d]) return out;  // wholly in the padding
  }
  using torch::indexing::Slice;
  const auto dst = [&](const torch::Tensor& t) {
    return t.index({Slice(lo[0] - p.origin[0] - r.begin[0], hi[0] - p.origin[0] - r.begin[0]),
                    Slice(lo[1] - p.origin[1] - r.begin[1], hi[1] - p.origin[1] - r.begin[1]),
                    Slice(lo[2] - p.origin[2] - r.begin[2], hi[2] - p.origin[2] - r.begin[2])});
  };
  // One slab of k per channel and for the labels: [k][j][i] of the whole plane, cropped to [lo, hi) in j and i.
  const auto slab = [&](const std::string& path, int64_t channel) {
    auto values = read_nifti_slab(path, lo[0], hi[0], channel);
    st.voxels_read += static_cast<int64_t>(values.size());
    return torch::from_blob(values.data(), {hi[0] - lo[0], st.shape[1], st.shape[2]}, torch::kFloat32)
        .index({Slice(), Slice(lo[1], hi[1]), Slice(lo[2], hi[2])})
        .clone();
  };
  for (int64_t ch = 0; ch < C; ++ch) {
    const auto [path, index_in_file] = channel_source(st.files, ch);
    dst(out.image).select(-1, ch).copy_(normalization_.apply(slab(path, index_in_file), ch, st.mean[ch], st.std[ch]));
  }
  auto labels = slab(st.files.label, 0).round_();
  if (options_.info.ignore_label >= 0) labels.masked_fill_(labels == options_.info.ignore_label, ClassMap::kIgnore);
  dst(out.mask).copy_(labels);
  return out;
}

std::string NiftiDataset::sample_group(int64_t index) const {
  return options_.cases[static_cast<size_t>(placement(index, 0).case_index)].name;
}

std::string NiftiDataset::statistics_json() const {
  nlohmann::json j;
  j["normalization"] = nlohmann::json::parse(normalization_.to_json());
  j["channel_names"] = options_.info.channel_names;
  j["labels"] = options_.info.labels;
  j["regions"] = options_.info.regions;
  j["ignore_label"] = options_.info.ignore_label;
  return j.dump();
}

std::string NiftiDataset::describe() const {
  return "NIfTI " + options_.info.layout + " '" + options_.info.root + "', " + std::to_string(case_count()) +
         " case(s), " + std::to_string(size()) + " crops of " + std::to_string(options_.size) + "³";
}

}  // namespace spvit::data

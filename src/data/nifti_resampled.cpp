// NIfTI volumes at a target spacing (nifti_resampled.h).
#include "spvit/data/nifti_resampled.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "nifti_cache.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/data/hash.h"

namespace fs = std::filesystem;

namespace spvit::data {
namespace {

constexpr int64_t kSlicesPerChunk = 16;  // output slices resampled at a time while a cached volume is written

// Where channel c of a case lives: its own file (nnU-Net, resampled caches) or the 4th axis of one file (MSD).
std::pair<std::string, int64_t> channel_file(const NiftiCase& c, int64_t channel) {
  if (c.images.size() == 1) return {c.images[0], channel};
  return {c.images.at(static_cast<size_t>(channel)), 0};
}

// A whole channel resampled, file order (i fastest).
std::vector<float> resampled_channel(const std::string& path, int64_t channel, const ResampleGrid& g,
                                     Interpolation mode) {
  std::vector<float> out;
  out.reserve(static_cast<size_t>(g.out_shape[0] * g.out_shape[1] * g.out_shape[2]));
  for (int64_t o0 = 0; o0 < g.out_shape[0]; o0 += kSlicesPerChunk) {
    const auto slab = read_resampled_slab(path, channel, g, o0, std::min(g.out_shape[0], o0 + kSlicesPerChunk), mode);
    const float* p = slab.data_ptr<float>();
    out.insert(out.end(), p, p + slab.numel());
  }
  return out;
}

}  // namespace

std::optional<std::array<double, 3>> target_spacing(const DataConfig& data) {
  if (data.spacing.empty()) return std::nullopt;
  std::array<double, 3> s{};
  bool ok = data.spacing.size() == 3;
  for (size_t d = 0; ok && d < 3; ++d) {
    char* end = nullptr;
    s[d] = std::strtod(data.spacing[d].c_str(), &end);
    ok = end != data.spacing[d].c_str() && *end == '\0' && std::isfinite(s[d]) && s[d] > 0;
  }
  if (!ok) {
    std::string given;
    for (const auto& v : data.spacing) given += (given.empty() ? "" : ", ") + v;
    SPVIT_THROW(ConfigError, "data.spacing must be 3 positive numbers (mm per voxel along i, j, k), got [", given, "]");
  }
  return s;
}

ResampleGrid resample_grid(const NiftiHeader& h, const std::array<double, 3>& spacing) {
  return ResampleGrid::between({h.shape.at(2), h.shape.at(1), h.shape.at(0)}, {h.spacing[2], h.spacing[1], h.spacing[0]},
                               {spacing[2], spacing[1], spacing[0]});
}

bool has_spacing(const NiftiHeader& h, const std::array<double, 3>& spacing) {
  for (int d = 0; d < 3; ++d) {
    if (std::abs(h.spacing[d] - spacing[d]) > 1e-3 * std::max(h.spacing[d], spacing[d])) return false;
  }
  return true;
}

NiftiHeader resampled_header(const NiftiHeader& header, const ResampleGrid& grid) {
  NiftiHeader h = header;
  h.shape = {grid.out_shape[2], grid.out_shape[1], grid.out_shape[0]};
  for (int axis = 0; axis < 3; ++axis) {  // file axis i, j, k = tensor axis 2, 1, 0
    const double step = grid.step[static_cast<size_t>(2 - axis)];
    for (int r = 0; r < 3; ++r) h.affine[r][axis] *= step;
    h.spacing[axis] *= step;
  }
  if (h.sform_code == 0 && h.qform_code == 0) h.sform_code = h.qform_code = 1;  // write_nifti keeps the affine
  h.datatype = 16;
  h.scl_slope = h.scl_inter = 0;
  return h;
}

torch::Tensor read_resampled_slab(const std::string& path, int64_t channel, const ResampleGrid& grid, int64_t o0,
                                  int64_t o1, Interpolation mode) {
  const auto [k0, k1] = grid.input_slices(o0, o1);
  auto values = read_nifti_slab(path, k0, k1, channel);
  const auto input = torch::from_blob(values.data(), {k1 - k0, grid.in_shape[1], grid.in_shape[2]}, torch::kFloat32);
  return resample_slab(input, k0, grid, o0, o1, mode).to(torch::kFloat32).contiguous();
}

NiftiCase resampled_case(const NiftiCase& c, const NiftiDatasetInfo& info, const std::array<double, 3>& spacing,
                         const std::string& cache_dir) {
  const auto label_header = read_nifti_header(c.label);
  if (has_spacing(label_header, spacing)) return c;
  if (cache_dir.empty()) {
    SPVIT_THROW(ConfigError, "data.spacing: resampling case '", c.name, "' needs a cache folder (data.cache_dir)");
  }
  // bump the constant when the resampling changes
  uint64_t key = nifti_cache::case_key(hash_key({0x7e5au, nifti_cache::text_key(info)}), c);
  for (double s : spacing) key = hash_key({key, static_cast<uint64_t>(std::llround(s * 1e6))});
  const std::string dir = cache_dir + "/nifti/resampled-" + nifti_cache::hex(key);
  NiftiCase out;
  out.name = c.name;
  for (int64_t ch = 0; ch < info.channels(); ++ch) {
    char name[32];
    std::snprintf(name, sizeof name, "_%04lld.nii", static_cast<long long>(ch));
    out.images.push_back(dir + "/" + c.name + name);
  }
  out.label = dir + "/" + c.name + ".nii";
  const std::string done = dir + "/" + c.name + ".done";
  if (fs::exists(done)) return out;
  // Each file is written atomically and the marker last, so an interrupted run leaves nothing that looks complete.
  const auto grid = resample_grid(label_header, spacing);
  const auto header = resampled_header(label_header, grid);
  log::info("resampling case '{}' from {:.4g} x {:.4g} x {:.4g} mm to {:.4g} x {:.4g} x {:.4g} mm (data.spacing) into "
            "{}", c.name, label_header.spacing[0], label_header.spacing[1], label_header.spacing[2], spacing[0],
            spacing[1], spacing[2], dir);
  for (int64_t ch = 0; ch < info.channels(); ++ch) {
    const auto [path, index] = channel_file(c, ch);
    const auto values = resampled_channel(path, index, grid, Interpolation::linear);
    write_nifti(out.images[static_cast<size_t>(ch)], header, header.shape, values.data());
  }
  const auto labels = resampled_channel(c.label, 0, grid, Interpolation::nearest);
  std::vector<int32_t> ids(labels.size());
  for (size_t v = 0; v < labels.size(); ++v) ids[v] = static_cast<int32_t>(std::lround(labels[v]));
  write_nifti_labels(out.label, header, header.shape, ids.data());
  nifti_cache::write_json(done, nlohmann::json{{"source", c.label}});
  return out;
}

}  // namespace spvit::data

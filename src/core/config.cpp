#include "spvit/core/config.h"
#include "spvit/core/int_math.h"

#include <fstream>
#include <sstream>

#include <algorithm>
#include <limits>

#include "config_visitors.h"
#include "spvit/build_info.h"
#include "spvit/core/torch_compat.h"

namespace spvit {
namespace {

bool torch_has_cuda_build() { return SPVIT_HAVE_CUDA != 0; }
bool has_nccl_build() { return SPVIT_HAVE_NCCL != 0; }
bool has_opencv_build() { return SPVIT_HAVE_OPENCV != 0; }

// Applies "a.b.c=value" on top of the parsed YAML tree, creating mappings as needed.
void apply_override(YAML::Node& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    SPVIT_THROW(ConfigError, "override '", assignment, "' must look like key.sub=value");
  }
  const std::string path = assignment.substr(0, eq);
  const std::string value_text = assignment.substr(eq + 1);
  YAML::Node value;
  try {
    value = YAML::Load(value_text);
  } catch (const YAML::Exception& e) {
    SPVIT_THROW(ConfigError, "override '", assignment, "': value is not valid YAML (", e.msg, ")");
  }
  if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
  YAML::Node cur;
  cur.reset(root);  // yaml-cpp: reset() rebinds, operator= would overwrite the node's value
  std::stringstream parts(path);
  std::string part, walked;
  std::vector<std::string> keys;
  while (std::getline(parts, part, '.')) {
    if (part.empty()) SPVIT_THROW(ConfigError, "override '", assignment, "' has an empty key component");
    keys.push_back(part);
  }
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    walked += (walked.empty() ? "" : ".") + keys[i];
    YAML::Node next = cur[keys[i]];
    if (next && !next.IsNull() && !next.IsMap()) {
      SPVIT_THROW(ConfigError, "override '", assignment, "': '", walked, "' is a value, not a section");
    }
    if (!next || next.IsNull()) cur[keys[i]] = YAML::Node(YAML::NodeType::Map);
    YAML::Node child = cur[keys[i]];
    cur.reset(child);
  }
  cur[keys.back()] = value;
}


// data.patcher against the model: which layouts each decoder can train on, and the adaptive tree's constraints
// (the patcher checks them again, but a config error should come before any data is read).
void validate_patcher(const Config& c) {
  const auto& p = c.data.patcher;
  const auto& m = c.model;
  if (m.decoder == "unetr" && p.kind != "uniform") {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.kind' = ", p.kind,
                " needs 'model.decoder' = tile: the unetr decoder works on uniform grids only");
  }
  if (p.kind == "uniform") {
    if (p.score_downsample != 1 || p.threshold_jitter != 0.0) {
      SPVIT_THROW(ConfigError, "config keys 'data.patcher.score_downsample' and 'data.patcher.threshold_jitter' "
                  "shape adaptive layouts; 'data.patcher.kind' = uniform needs them at 1 and 0");
    }
    return;
  }
  if (p.length < 1) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.length' must give the fixed token count L (>= 1) for "
                "'data.patcher.kind' = adaptive");
  }
  if (m.pos_encoding == "grid") {
    SPVIT_THROW(ConfigError, "config key 'model.pos_encoding' = grid has no table slot for an adaptive leaf: use "
                "coords (or none) with 'data.patcher.kind' = adaptive");
  }
  if (!is_power_of_two(m.patch)) {
    SPVIT_THROW(ConfigError, "config key 'model.patch' = ", m.patch,
                " must be a power of two for 'data.patcher.kind' = adaptive (leaves halve down to it)");
  }
  if (p.min_side != 0 && (!is_power_of_two(p.min_side) || p.min_side > m.patch)) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.min_side' = ", p.min_side,
                " must be 0 or a power of two <= 'model.patch' = ", m.patch);
  }
  if (!is_power_of_two(p.score_downsample) || p.score_downsample > m.patch) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.score_downsample' = ", p.score_downsample,
                " must be a power of two <= 'model.patch' = ", m.patch);
  }
  if (p.scorer == "edges" && !has_opencv_build()) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.scorer' = edges needs OpenCV, which this build does not have; "
                "the variance, gradient and texture scorers work without it");
  }
  if (p.scorer == "edges" && p.blur_kernel % 2 == 0) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.blur_kernel' = ", p.blur_kernel,
                " must be odd for 'data.patcher.scorer' = edges (a Gaussian kernel has a centre pixel)");
  }
  if (p.threshold_jitter > 0 && p.scorer != "edges") {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.threshold_jitter' = ", p.threshold_jitter,
                " scales Canny thresholds, which only 'data.patcher.scorer' = edges has (got ", p.scorer, ")");
  }
  if (p.canny_high < p.canny_low) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.canny_high' = ", p.canny_high,
                " must not be below 'data.patcher.canny_low' = ", p.canny_low);
  }
}

// a · b, or the largest int64 when that overflows (token counts of huge synthetic volumes only need comparing).
int64_t saturating_product(int64_t a, int64_t b) {
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return std::numeric_limits<int64_t>::max();
  return a * b;
}

// The model's own constraints (the Segmenter's constructor checks them again).
void validate_model(const Config& c) {
  const auto& m = c.model;
  if (m.decoder == "unetr" && (m.patch < 2 || !is_power_of_two(m.patch))) {
    SPVIT_THROW(ConfigError, "config key 'model.patch' = ", m.patch, " must be a power of two >= 2 for "
                "'model.decoder' = unetr (the decoder upsamples tokens to pixels in log2(patch) x2 stages)");
  }
  if (m.decoder == "tile" && m.decoder_chunk_rows != 0) {
    SPVIT_THROW(ConfigError, "config key 'model.decoder_chunk_rows' = ", m.decoder_chunk_rows,
                " chunks the rows of the unetr decoder; 'model.decoder' = tile has no rows to chunk: set it to 0");
  }
}

// Device, backend and precision against this build (select_device, resolve_backend and RunPrecision check them
// again on each rank; here they fail before any rank starts work).
void validate_device_and_precision(const Config& c) {
  const std::string& mode = c.train.precision;
  if (mode != "fp32") {
    if (c.device == "cpu") {
      SPVIT_THROW(ConfigError, "config key 'train.precision' = ", mode, " needs a CUDA device, but 'device' = cpu; "
                  "CPU training runs in fp32");
    }
    if (c.dtype != "float32") {
      SPVIT_THROW(ConfigError, "config key 'train.precision' = ", mode, " needs 'dtype' = float32 (the master copy "
                  "of the parameters), got ", c.dtype);
    }
    if (!torch_has_cuda_build()) {
      SPVIT_THROW(ConfigError, "config key 'train.precision' = ", mode,
                  " needs a CUDA build of spvit; this build runs fp32 only");
    }
    if (!compat::AutocastGuard::supported()) {
      SPVIT_THROW(ConfigError, "config key 'train.precision' = ", mode, " needs CUDA autocast from LibTorch >= 2.4; "
                  "this build has LibTorch ", TORCH_VERSION);
    }
  }
  if (c.device == "cuda" && !torch_has_cuda_build()) {
    SPVIT_THROW(ConfigError, "config key 'device' = cuda needs a CUDA build of spvit (this build's LibTorch has no "
                "CUDA): use 'device' = auto or cpu");
  }
  if (c.dist.backend == "nccl") {
    if (!has_nccl_build()) {
      SPVIT_THROW(ConfigError, "config key 'dist.backend' = nccl needs a build with CUDA LibTorch and NCCL; this "
                  "build has ", torch_has_cuda_build() ? "CUDA but no NCCL" : "no CUDA", ": use 'dist.backend' = mpi "
                  "or auto");
    }
    if (c.device == "cpu") {
      SPVIT_THROW(ConfigError, "config key 'dist.backend' = nccl needs GPUs, but 'device' = cpu: use "
                  "'dist.backend' = mpi or auto");
    }
  }
}

// The data against the model. Image folders hold 2-D images; synthetic data is known from the configuration alone
// (its kind fixes the channels and dimensions, data.size the sample shape), so everything open_datasets, the
// loader, the bands, the patcher and the positional table check at run time is checked here. Folders and HDF5
// files are checked when they are opened.
void validate_data(const Config& c) {
  const auto& d = c.data;
  const auto& m = c.model;
  const auto& p = d.patcher;
  if (d.source == "folder") {
    if (!has_opencv_build()) {
      SPVIT_THROW(ConfigError, "config key 'data.source' = folder reads images through OpenCV, which this build "
                  "does not have: convert the data to HDF5 (data.source = hdf5)");
    }
    if (m.spatial_dims != 2) {
      SPVIT_THROW(ConfigError, "config key 'data.source' = folder holds 2-D images, but 'model.spatial_dims' = ",
                  m.spatial_dims, " (volumes come from data.source = hdf5, or synthetic with 'data.kind' = mri)");
    }
  }
  if (d.source != "synthetic") return;
  const bool mri = d.kind == "mri";
  const int64_t dims = mri ? 3 : 2, channels = mri ? 1 : 3;
  if (m.spatial_dims != dims) {
    SPVIT_THROW(ConfigError, "config key 'model.spatial_dims' = ", m.spatial_dims, " but 'data.kind' = ", d.kind,
                " generates ", dims, "-D ", mri ? "volumes" : "images", " (set 'model.spatial_dims' = ", dims, ")");
  }
  if (m.channels != channels) {
    SPVIT_THROW(ConfigError, "config key 'model.channels' = ", m.channels, " but 'data.kind' = ", d.kind,
                " generates ", channels, "-channel ", mri ? "volumes" : "(RGB) images", " (set 'model.channels' = ",
                channels, ")");
  }
  const int64_t groups = std::max<int64_t>(1, c.grid.data);
  if (d.train_samples < saturating_product(groups, c.train.batch_size)) {
    SPVIT_THROW(ConfigError, "config key 'data.train_samples' = ", d.train_samples,
                " is too few for 'train.batch_size' = ", c.train.batch_size, c.grid.data > 0 ? " in each of 'grid.data' = " + std::to_string(c.grid.data) +
                " data groups" : std::string(), ": an epoch would have no batch");
  }
  // The uniform grid: whole token rows for unetr (the bands); padded to whole tokens for the tile decoder.
  int64_t count = 1;
  const int64_t per_side = m.decoder == "unetr" ? d.size / m.patch : (d.size + m.patch - 1) / m.patch;
  for (int64_t k = 0; k < dims; ++k) count = saturating_product(count, per_side);
  if (m.decoder == "unetr") {
    if (d.size % m.patch != 0) {
      SPVIT_THROW(ConfigError, "config key 'data.size' = ", d.size, " must be a multiple of 'model.patch' = ", m.patch,
                  " for 'model.decoder' = unetr (its bands are whole token rows)");
    }
    if (per_side < c.grid.seq) {
      SPVIT_THROW(ConfigError, "config key 'grid.seq' = ", c.grid.seq, " needs a token row per sequence rank, but "
                  "'data.size' = ", d.size, " at 'model.patch' = ", m.patch, " has ", per_side, " token rows");
    }
  }
  if (p.kind == "uniform" && m.decoder == "tile" && p.length != 0 && p.length < count) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.length' = ", p.length, " is shorter than the uniform grid of ",
                count, " tokens ('data.size' = ", d.size, ", 'model.patch' = ", m.patch, "): use 0 (the grid's size) "
                "or at least ", count);
  }
  if (m.pos_encoding == "grid" && p.kind == "uniform") {
    const int64_t tokens = m.decoder == "tile" && p.length != 0 ? p.length : count;
    if (tokens > m.max_tokens) {
      SPVIT_THROW(ConfigError, "config key 'model.max_tokens' = ", m.max_tokens, " is smaller than the ", tokens,
                  " tokens of the uniform grid ('data.size' = ", d.size, ", 'model.patch' = ", m.patch,
                  ") that 'model.pos_encoding' = grid gives a table row each: raise it to ", tokens, " or use coords");
    }
  }
  if (p.kind == "adaptive" && d.size % p.score_downsample != 0) {
    SPVIT_THROW(ConfigError, "config key 'data.size' = ", d.size, " must be a multiple of "
                "'data.patcher.score_downsample' = ", p.score_downsample, " (the layout is planned on the sample "
                "shrunk by that factor)");
  }
}

// The learning-rate schedule's options (LrSchedule checks them again; a warmup longer than the run is clamped there).
void validate_train(const Config& c) {
  const auto& t = c.train;
  if (t.min_lr > t.lr) {
    SPVIT_THROW(ConfigError, "config key 'train.min_lr' = ", t.min_lr, " must not exceed 'train.lr' = ", t.lr,
                " (the schedule decays from lr to min_lr)");
  }
  if (t.power <= 0) {
    SPVIT_THROW(ConfigError, "config key 'train.power' = ", t.power, " must be > 0 (the polynomial schedule's "
                "exponent)");
  }
}

}  // namespace

void validate(const Config& c) {
  const auto& m = c.model;
  if (m.dim % m.heads != 0) {
    SPVIT_THROW(ConfigError, "config key 'model.dim' = ", m.dim, " must be divisible by 'model.heads' = ", m.heads);
  }
  validate_device_and_precision(c);
  if (c.data.source != "synthetic" && c.data.path.empty()) {
    SPVIT_THROW(ConfigError, "config key 'data.path' must name the training data for data.source = ",
                c.data.source);
  }
  if (m.attention == "local" && c.grid.seq > 1) {
    SPVIT_THROW(ConfigError, "config key 'model.attention' = local cannot shard a sequence: 'grid.seq' = ",
                c.grid.seq, " needs lss-kv or lss-x");
  }
  validate_model(c);
  validate_patcher(c);
  validate_data(c);
  validate_train(c);
}

Config parse_config(const std::string& yaml_text, const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    SPVIT_THROW(ConfigError, "configuration is not valid YAML: ", e.what());
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) SPVIT_THROW(ConfigError, "configuration must be a YAML mapping of sections");
  for (const auto& o : overrides) apply_override(root, o);

  Config config;
  config_detail::YamlReader reader(root, "");
  config.visit(reader);
  reader.finish();
  validate(config);
  return config;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) SPVIT_THROW(ConfigError, "cannot read config file '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return parse_config(text.str(), overrides);
  } catch (Error& e) {
    e.add_context("loading config file '" + path + "'");
    throw;  // rethrow the original object so its type (ConfigError) is kept
  }
}

std::string to_yaml(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  config_detail::YamlWriter writer(out);
  const_cast<Config&>(config).visit(writer);  // visit() is shared with the reader; the writer does not modify
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace spvit

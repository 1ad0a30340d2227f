#include "spvit/core/config.h"

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
  if (c.data.stain_jitter > 0 && m.channels != 3) {
    SPVIT_THROW(ConfigError, "config key 'data.stain_jitter' = ", c.data.stain_jitter, " needs RGB images, but "
                "'model.channels' = ", m.channels);
  }
  if (m.dim % m.heads != 0) {
    SPVIT_THROW(ConfigError, "config key 'model.dim' = ", m.dim, " must be divisible by 'model.heads' = ", m.heads);
  }
  validate_device_and_precision(c);
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

#include "spvit/core/config.h"

#include <fstream>
#include <sstream>

#include "config_visitors.h"
#include "spvit/build_info.h"

namespace spvit {
namespace {

bool torch_has_cuda_build() { return SPVIT_HAVE_CUDA != 0; }

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

bool is_power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

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
  if (p.threshold_jitter > 0 && p.scorer != "edges") {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.threshold_jitter' = ", p.threshold_jitter,
                " scales Canny thresholds, which only 'data.patcher.scorer' = edges has (got ", p.scorer, ")");
  }
  if (p.canny_high < p.canny_low) {
    SPVIT_THROW(ConfigError, "config key 'data.patcher.canny_high' = ", p.canny_high,
                " must not be below 'data.patcher.canny_low' = ", p.canny_low);
  }
}

}  // namespace

void validate(const Config& c) {
  const auto& m = c.model;
  if (m.dim % m.heads != 0) {
    SPVIT_THROW(ConfigError, "config key 'model.dim' = ", m.dim, " must be divisible by 'model.heads' = ", m.heads);
  }
  if (c.train.precision != "fp32" && !torch_has_cuda_build()) {
    SPVIT_THROW(ConfigError, "config key 'train.precision' = ", c.train.precision,
                " needs a CUDA build of spvit; this build runs fp32 only");
  }
  if (c.data.source != "synthetic" && c.data.path.empty()) {
    SPVIT_THROW(ConfigError, "config key 'data.path' must name the training data for data.source = ",
                c.data.source);
  }
  if (m.attention == "local" && c.grid.seq > 1) {
    SPVIT_THROW(ConfigError, "config key 'model.attention' = local cannot shard a sequence: 'grid.seq' = ",
                c.grid.seq, " needs lss-kv or lss-x");
  }
  validate_patcher(c);
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

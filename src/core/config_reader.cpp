#include "config_visitors.h"

namespace spvit::config_detail {

std::string join(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string scalar_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

void YamlReader::choice(const char* key, std::string& value, std::initializer_list<const char*> allowed) {
  known_.insert(key);
  const YAML::Node n = node_[key];
  if (!n) return;
  std::set<std::string> options(allowed.begin(), allowed.end());
  const std::string got = scalar_text(n);
  if (!n.IsScalar() || !options.count(got)) {
    SPVIT_THROW(ConfigError, "config key '", full(key), "' must be one of ", join(options), ", got '", got, "'");
  }
  value = got;
}

void YamlReader::finish() const {
  if (!node_.IsMap()) return;
  for (const auto& kv : node_) {
    const std::string key = kv.first.as<std::string>();
    if (!known_.count(key)) {
      SPVIT_THROW(ConfigError, "unknown config key '", full(key), "'; known keys",
                  path_.empty() ? "" : " in '" + path_ + "'", ": ", join(known_));
    }
  }
}

}  // namespace spvit::config_detail

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

void YamlReader::mapping(const char* key, NamedValues& value, const char* what) {
  known_.insert(key);
  const YAML::Node n = node_[key];
  if (!n) return;
  NamedValues parsed;
  if (!n.IsNull()) {
    if (!n.IsMap()) {
      SPVIT_THROW(ConfigError, "config key '", full(key), "' must be a mapping of names to values (", what,
                  "), got '", scalar_text(n), "'");
    }
    for (const auto& kv : n) {
      if (!kv.second.IsScalar()) {
        SPVIT_THROW(ConfigError, "config key '", full(key), ".", scalar_text(kv.first), "' must be a single value (",
                    what, "), got '", scalar_text(kv.second), "'");
      }
      parsed.emplace_back(scalar_text(kv.first), kv.second.Scalar());
    }
  }
  value = std::move(parsed);
}

void YamlReader::list(const char* key, std::vector<std::string>& value, const char* what) {
  known_.insert(key);
  const YAML::Node n = node_[key];
  if (!n) return;
  std::vector<std::string> parsed;
  if (n.IsScalar()) {
    parsed.push_back(n.Scalar());
  } else if (n.IsSequence()) {
    for (const auto& item : n) {
      if (!item.IsScalar()) {
        SPVIT_THROW(ConfigError, "config key '", full(key), "' must be a list of values (", what, "), got '",
                    scalar_text(n), "'");
      }
      parsed.push_back(item.Scalar());
    }
  } else if (!n.IsNull()) {
    SPVIT_THROW(ConfigError, "config key '", full(key), "' must be a list of values (", what, "), got '",
                scalar_text(n), "'");
  }
  value = std::move(parsed);
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

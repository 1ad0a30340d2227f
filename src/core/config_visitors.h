// Private to src/core: the two visitors that walk a config struct's visit() list — one reads YAML with
// validation, one writes YAML.
#pragma once
#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "spvit/core/config_visit.h"
#include "spvit/core/error.h"

namespace spvit::config_detail {

template <typename T>
const char* type_name() {
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else return "a string";
}

std::string join(const std::set<std::string>& names);
std::string scalar_text(const YAML::Node& node);

class YamlReader {
 public:
  YamlReader(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {}

  template <typename T>
  void field(const char* key, T& value, Range<T> range, const char* what) {
    known_.insert(key);
    const YAML::Node n = node_[key];
    if (!n) return;
    T parsed{};
    try {
      if (!n.IsScalar()) throw YAML::Exception(YAML::Mark::null_mark(), "not a scalar");
      parsed = n.as<T>();
    } catch (const YAML::Exception&) {
      SPVIT_THROW(ConfigError, "config key '", full(key), "' must be ", type_name<T>(), " (", what, "), got '",
                  scalar_text(n), "'");
    }
    if (!range.contains(parsed)) {
      SPVIT_THROW(ConfigError, "config key '", full(key), "' = ", parsed, " is outside the allowed range [",
                  range.min, ", ", range.max, "] (", what, ")");
    }
    value = parsed;
  }

  void choice(const char* key, std::string& value, std::initializer_list<const char*> allowed);
  // A mapping of names to scalar values (data.classes: {Tumor: 1, Exclusion: ignore}), in file order.
  void mapping(const char* key, NamedValues& value, const char* what);
  // A list of scalars (data.class_priority: [Tumor, Stroma]); a single scalar is a list of one.
  void list(const char* key, std::vector<std::string>& value, const char* what);

  template <typename Section>
  void section(const char* key, Section& section) {
    known_.insert(key);
    const YAML::Node n = node_[key];
    if (!n || n.IsNull()) return;
    if (!n.IsMap()) SPVIT_THROW(ConfigError, "config key '", full(key), "' must be a mapping of keys to values");
    YamlReader sub(n, full(key));
    section.visit(sub);
    sub.finish();
  }

  // Throws for any key in this mapping that visit() did not ask for.
  void finish() const;

 private:
  std::string full(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  YAML::Node node_;
  std::string path_;
  std::set<std::string> known_;
};

class YamlWriter {
 public:
  explicit YamlWriter(YAML::Emitter& out) : out_(out) {}
  template <typename T>
  void field(const char* key, const T& value, Range<T>, const char*) {
    out_ << YAML::Key << key << YAML::Value << value;
  }
  void choice(const char* key, const std::string& value, std::initializer_list<const char*>) {
    out_ << YAML::Key << key << YAML::Value << value;
  }
  void mapping(const char* key, const NamedValues& value, const char*) {
    out_ << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginMap;
    for (const auto& [name, v] : value) out_ << YAML::Key << name << YAML::Value << v;
    out_ << YAML::EndMap;
  }
  void list(const char* key, const std::vector<std::string>& value, const char*) {
    out_ << YAML::Key << key << YAML::Value << YAML::Flow << value;
  }
  template <typename Section>
  void section(const char* key, Section& section) {
    out_ << YAML::Key << key << YAML::Value << YAML::BeginMap;
    section.visit(*this);
    out_ << YAML::EndMap;
  }

 private:
  YAML::Emitter& out_;
};

}  // namespace spvit::config_detail

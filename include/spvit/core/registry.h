// A registry: the one list of the named choices of one kind (attention strategies, decoders, patchers, scorers,
// dataset sources), each with what it needs to be built and checked. Each layer defines its registries as explicit
// lists in one function (no static self-registration the linker could drop); configuration validation, CLI help and
// the docs check ask them, and no other code compares the names.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "spvit/core/error.h"

namespace spvit {

// "a, b, c" (or "a, b or c" with last_joiner " or "), for messages and help texts.
inline std::string join_names(const std::vector<std::string>& names, const char* last_joiner = ", ") {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == names.size() ? last_joiner : ", ") + names[i];
  }
  return out;
}

// Entry: a struct with at least `std::string name` and `std::string summary` (one line for help and docs).
template <typename Entry>
class Registry {
 public:
  // what: the kind's name in messages ("decoder"); config_key: the key that selects it ("model.decoder").
  Registry(std::string what, std::string config_key, std::vector<Entry> entries)
      : what_(std::move(what)), config_key_(std::move(config_key)), entries_(std::move(entries)) {}

  // The entry of that name; ConfigError "<what> '<name>' is not one of a, b, c" otherwise.
  const Entry& at(const std::string& name) const {
    if (const Entry* e = find(name)) return *e;
    SPVIT_THROW(ConfigError, what_, " '", name, "' is not one of ", names_text());
  }

  // The same for a name read from the configuration: the error names the config key that selects it.
  const Entry& at_config(const std::string& name) const {
    if (const Entry* e = find(name)) return *e;
    SPVIT_THROW(ConfigError, "config key '", config_key_, "' must be one of ", names_text(), ", got '", name, "'");
  }

  std::vector<std::string> names() const {
    return names_where([](const Entry&) { return true; });
  }

  // The names of the entries for which keep(entry) is true (e.g. the strategies that shard a sequence).
  template <typename Keep>
  std::vector<std::string> names_where(Keep keep) const {
    std::vector<std::string> out;
    for (const auto& e : entries_) {
      if (keep(e)) out.push_back(e.name);
    }
    return out;
  }

  std::string names_text() const { return join_names(names()); }  // "a, b, c"

  const std::vector<Entry>& entries() const { return entries_; }
  const std::string& what() const { return what_; }
  const std::string& config_key() const { return config_key_; }

 private:
  const Entry* find(const std::string& name) const {
    for (const auto& e : entries_) {
      if (e.name == name) return &e;
    }
    return nullptr;
  }

  std::string what_;
  std::string config_key_;
  std::vector<Entry> entries_;
};

}  // namespace spvit

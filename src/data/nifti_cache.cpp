// NIfTI cache entries (nifti_cache.h).
#include "nifti_cache.h"

#include <filesystem>
#include <fstream>

#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/data/hash.h"

namespace fs = std::filesystem;

namespace spvit::data::nifti_cache {

uint64_t file_key(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  const auto time = fs::last_write_time(path, ec).time_since_epoch().count();
  uint64_t h = hash_key({static_cast<uint64_t>(size), static_cast<uint64_t>(time)});
  for (char ch : path) h = hash_key({h, static_cast<uint64_t>(static_cast<unsigned char>(ch))});
  return h;
}

uint64_t text_key(const NiftiDatasetInfo& info) {
  std::string text;
  for (const auto& c : info.channel_names) text += c + "\n";
  for (const auto& [name, value] : info.labels) text += name + "=" + std::to_string(value) + "\n";
  uint64_t h = hash_key({text.size()});
  for (char ch : text) h = hash_key({h, static_cast<uint64_t>(static_cast<unsigned char>(ch))});
  return h;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::optional<nlohmann::json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // a damaged cache entry is recomputed
  }
}

void write_json(const std::string& path, const nlohmann::json& j) {
  try {
    write_text_atomically(path, j.dump());
  } catch (const Error& e) {  // a read-only cache costs recomputation, not the run
    log::warn("cannot cache NIfTI statistics in '{}': {}", path, e.what());
  }
}

uint64_t case_key(uint64_t seed, const NiftiCase& c) {
  uint64_t key = seed;
  for (const auto& f : c.images) key = hash_key({key, file_key(f)});
  return hash_key({key, file_key(c.label)});
}

}  // namespace spvit::data::nifti_cache

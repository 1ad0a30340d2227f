// Cache entries of the NIfTI dataset (statistics, resampled volumes) in data.cache_dir/nifti: keys from what the
// entries depend on, JSON read back tolerantly (a damaged entry is recomputed), written atomically. Internal to the
// data layer.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "spvit/data/nifti_dataset.h"

namespace spvit::data::nifti_cache {

// A key for a file's content as far as its path, size and modification time tell.
uint64_t file_key(const std::string& path);
// What of dataset.json the entries depend on: channel names (the normalisation scheme) and labels.
uint64_t text_key(const NiftiDatasetInfo& info);
// The key of a case's files (every image file, then the label file) mixed into `seed`.
uint64_t case_key(uint64_t seed, const NiftiCase& c);
std::string hex(uint64_t v);
std::optional<nlohmann::json> read_json(const std::string& path);
// Writes atomically; a failure (read-only cache) is a warning: it costs recomputation, not the run.
void write_json(const std::string& path, const nlohmann::json& j);

}  // namespace spvit::data::nifti_cache

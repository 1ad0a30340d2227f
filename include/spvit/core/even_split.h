// The sharding rule: how `length` items (a sample's tokens, a grid's token rows) are split into contiguous parts
// over `parts` ranks — sizes differing by at most one, the first length % parts parts one larger. The one place
// that decides it (dist::SequenceShard and patch::sequence_segments use it; the patch layer cannot see dist).
#pragma once
#include <cstdint>
#include <vector>

#include "spvit/core/error.h"

namespace spvit {

inline std::vector<int64_t> even_split(int64_t length, int parts) {
  SPVIT_CHECK(length >= 0, "cannot split a negative length ", length);
  if (parts < 1) SPVIT_THROW(ConfigError, "a split needs at least one part, got ", parts);
  std::vector<int64_t> sizes(static_cast<size_t>(parts));
  for (int r = 0; r < parts; ++r) sizes[static_cast<size_t>(r)] = length / parts + (r < length % parts ? 1 : 0);
  return sizes;
}

}  // namespace spvit

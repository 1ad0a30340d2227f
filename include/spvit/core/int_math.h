// Integer helpers shared by the config checks and the patch layer (one definition, so the rules cannot drift).
#pragma once
#include <cstdint>

namespace spvit {

inline bool is_power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace spvit

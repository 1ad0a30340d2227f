// Rank-aware logging on spdlog: every line is prefixed with the rank; info/debug lines are shown by rank 0 only,
// warnings and errors by every rank (a problem on rank 7 must not be hidden).
#pragma once
#include <spdlog/spdlog.h>

#include <string>

namespace spvit::log {

// Sets up the default logger for this process. `level` is one of trace, debug, info, warn, error, off.
void init(int world_rank, int world_size, const std::string& level = "info");
// Changes the level after init (throws ConfigError for an unknown level name).
void set_level(const std::string& level);
int rank();

template <typename... Args>
void info(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  if (rank() == 0) spdlog::info(fmt, std::forward<Args>(args)...);
}
template <typename... Args>
void debug(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  if (rank() == 0) spdlog::debug(fmt, std::forward<Args>(args)...);
}
template <typename... Args>
void warn(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  spdlog::warn(fmt, std::forward<Args>(args)...);
}
template <typename... Args>
void error(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  spdlog::error(fmt, std::forward<Args>(args)...);
}

}  // namespace spvit::log

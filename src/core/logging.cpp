#include "spvit/core/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "spvit/core/error.h"

namespace spvit::log {
namespace {
int g_rank = 0;
}

int rank() { return g_rank; }

void set_level(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  // from_str maps unknown names to "off"; only accept "off" when it was asked for.
  if (parsed == spdlog::level::off && level != "off") {
    SPVIT_THROW(ConfigError, "log level '", level, "' is not one of trace, debug, info, warn, error, off");
  }
  spdlog::set_level(parsed);
}

void init(int world_rank, int world_size, const std::string& level) {
  g_rank = world_rank;
  // stderr so that machine-readable results printed on stdout stay clean.
  auto logger = spdlog::get("spvit");
  if (!logger) logger = spdlog::stderr_color_mt("spvit");
  spdlog::set_default_logger(logger);
  const int width = static_cast<int>(std::to_string(std::max(world_size - 1, 0)).size());
  std::string rank_tag = std::to_string(world_rank);
  rank_tag.insert(0, static_cast<size_t>(std::max(0, width - static_cast<int>(rank_tag.size()))), '0');
  spdlog::set_pattern("[%H:%M:%S.%e] [rank " + rank_tag + "] [%^%l%$] %v");
  set_level(level);
}

}  // namespace spvit::log

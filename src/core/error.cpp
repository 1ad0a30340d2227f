#include "spvit/core/error.h"

#include <cstring>

namespace spvit {

Error& Error::add_context(const std::string& what_we_were_doing) {
  message_ += "\n  while " + what_we_were_doing;
  return *this;
}

namespace detail {
std::string with_location(const std::string& message, const char* file, int line) {
  // Keep only the path from the project's top folders so messages stay short.
  const char* shown = file;
  for (const char* top : {"src/", "include/", "apps/", "tests/", "benchmarks/"}) {
    if (const char* p = std::strstr(file, top)) {
      shown = p;
      break;
    }
  }
  return message + " [" + shown + ":" + std::to_string(line) + "]";
}
}  // namespace detail

}  // namespace spvit

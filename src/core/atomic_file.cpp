#include "spvit/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "spvit/core/error.h"

namespace spvit {

void write_file_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  try {
    write(temporary);
    // Flush the data before the rename, so a crash cannot leave a renamed but empty file.
    const int fd = ::open(temporary.c_str(), O_RDONLY);
    SPVIT_CHECK(fd >= 0, "cannot reopen '", temporary, "' to flush it");
    ::fsync(fd);
    ::close(fd);
    fs::rename(temporary, target);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.close();
    SPVIT_CHECK(out.good(), "cannot write '", tmp, "'");
  });
}

}  // namespace spvit

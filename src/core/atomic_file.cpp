#include "spvit/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

#include "spvit/core/error.h"

namespace spvit {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& path, int err, const std::string& doing) {
  throw WriteError(write_failure_message(path, err, doing));
}

// The error SPVIT_INJECT_WRITE_ERROR asks for on `path`, or 0.
int injected_error(const std::string& path) {
  const char* spec = std::getenv("SPVIT_INJECT_WRITE_ERROR");
  if (spec == nullptr || *spec == '\0') return 0;
  std::string text(spec), name = "ENOSPC";
  if (const auto colon = text.rfind(':'); colon != std::string::npos) {
    name = text.substr(colon + 1);
    text = text.substr(0, colon);
  }
  if (path.find(text) == std::string::npos) return 0;
  static const std::map<std::string, int> errors{
      {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EACCES", EACCES}, {"EIO", EIO}, {"ENOENT", ENOENT}};
  const auto it = errors.find(name);
  return it == errors.end() ? EIO : it->second;
}

// fsync of a file or directory, with the injected error first.
void flush(const std::string& path, const std::string& shown_as, bool directory) {
  if (const int err = directory ? 0 : injected_error(shown_as)) fail(shown_as, err, "flushing");
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) fail(path, errno, "reopening to flush");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail(shown_as, err, directory ? "flushing its directory" : "flushing");
}

void make_parent_directories(const fs::path& target) {
  if (!target.has_parent_path()) return;
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) fail(target.string(), ec.value(), "creating its folder '" + target.parent_path().string() + "'");
}

}  // namespace

std::string write_failure_message(const std::string& path, int err, const std::string& doing) {
  return "cannot write '" + path + "' (" + doing + "): " + std::strerror(err);
}

FileSink::FileSink(const std::string& path, const std::string& shown_as)
    : path_(path), shown_as_(shown_as.empty() ? path : shown_as) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(shown_as_, errno, "creating");
}

FileSink::~FileSink() {
  if (fd_ >= 0) ::close(fd_);
}

size_t FileSink::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  size_t left = error_ == 0 ? size : 0;
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = n < 0 ? errno : ENOSPC;  // write() returning 0 for a regular file: nothing more fits
      break;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return size;
}

void FileSink::close() {
  const int rc = fd_ >= 0 ? ::close(fd_) : 0;
  const int close_error = rc != 0 ? errno : 0;
  fd_ = -1;
  if (error_ != 0) fail(shown_as_, error_, "writing");
  if (close_error != 0) fail(shown_as_, close_error, "closing");
}

void write_file_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  const fs::path target(path);
  make_parent_directories(target);
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  try {
    write(temporary);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
  commit_temporary_file(temporary, path);
}

void commit_temporary_file(const std::string& temporary, const std::string& path) {
  try {
    // Flush the data before the rename, so a crash cannot leave a renamed but empty file.
    flush(temporary, path, /*directory=*/false);
    if (::rename(temporary.c_str(), path.c_str()) != 0) fail(path, errno, "renaming '" + temporary + "' to it");
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
  // The rename itself is durable only once the directory is flushed.
  const fs::path target(path);
  flush(target.has_parent_path() ? target.parent_path().string() : ".", path, /*directory=*/true);
}

void write_bytes_atomically(const std::string& path, const void* data, size_t size) {
  write_file_atomically(path, [&](const std::string& tmp) {
    FileSink sink(tmp, path);
    sink.write(data, size);
    sink.close();
  });
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_bytes_atomically(path, text.data(), text.size());
}

void check_stream_written(std::ostream& out, const std::string& path) {
  errno = 0;
  out.flush();
  if (!out) fail(path, errno != 0 ? errno : EIO, "writing");
}

void append_text(const std::string& path, const std::string& text) {
  make_parent_directories(fs::path(path));
  if (const int err = injected_error(path)) fail(path, err, "appending");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, errno, "opening to append");
  const char* p = text.data();
  size_t left = text.size();
  int err = 0;
  while (left > 0 && err == 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) err = n < 0 ? errno : ENOSPC;
    else { p += n; left -= static_cast<size_t>(n); }
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) fail(path, err, "appending");
}

}  // namespace spvit

// Writing outputs so that readers (and a crash, a full disk, a killed job) only ever see the old file or the
// complete new one: the content goes to a temporary name in the same directory, is flushed to disk (fsync, checked),
// renamed over the target, and the directory entry is flushed too. Every failure is a WriteError naming the path and
// the OS reason ("No space left on device"); the temporary file is removed and the previous file is left untouched.
//
// Test hook: SPVIT_INJECT_WRITE_ERROR=<substring>[:<ENOSPC|EDQUOT|EACCES|EIO|ENOENT>] makes every write whose target
// path contains <substring> fail at its flush with that error (default ENOSPC), on any filesystem.
#pragma once
#include <cstddef>
#include <functional>
#include <ostream>
#include <string>

namespace spvit {

// Calls `write(temporary_path)`, which may write the file by any means (a library's writer included) and should
// throw if that fails; then flushes, renames to `path` (creating parent directories) and flushes the directory.
void write_file_atomically(const std::string& path, const std::function<void(const std::string&)>& write);

// For writers that manage their own temporary file (e.g. libtiff's): flushes `temporary`, renames it to `path` and
// flushes the directory; WriteError (naming `path`) on any failure, the temporary file then removed.
void commit_temporary_file(const std::string& temporary, const std::string& path);

// Atomically replaces `path` with `text` (or `size` bytes at `data`).
void write_text_atomically(const std::string& path, const std::string& text);
void write_bytes_atomically(const std::string& path, const void* data, size_t size);

// For writers that stream into a std::ofstream: throws WriteError naming `path` and the OS reason if the stream
// failed (call after the last write; it flushes).
void check_stream_written(std::ostream& out, const std::string& path);

// Appends `text` to `path` (created if missing), e.g. a JSONL log line; WriteError on any failure.
void append_text(const std::string& path, const std::string& text);

// A file written through a byte callback (e.g. LibTorch's archive writer). write() never fails or throws: the first
// OS error is remembered and later bytes are dropped, because some writers (LibTorch's zip writer) throw from a
// destructor when their callback reports a short write, which ends the process. close() throws WriteError naming
// the file and the first error.
class FileSink {
 public:
  // WriteError if the file cannot be created. Errors name `shown_as` (e.g. the target of an atomic write, not its
  // temporary file) when given.
  explicit FileSink(const std::string& path, const std::string& shown_as = "");
  ~FileSink();
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;
  size_t write(const void* data, size_t size);  // always returns `size`
  void close();

 private:
  std::string path_, shown_as_;
  int fd_ = -1;
  int error_ = 0;  // first errno seen
};

// The message of a WriteError for `path` failing with `err` (errno) while `doing` ("writing", "renaming to ...").
std::string write_failure_message(const std::string& path, int err, const std::string& doing);

}  // namespace spvit

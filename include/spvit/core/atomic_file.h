// Writes a file so that readers (and a crash) only ever see the old file or the complete new one: the content goes
// to a temporary name in the same directory, is flushed to disk, and is renamed over the target.
#pragma once
#include <functional>
#include <string>

namespace spvit {

// Calls `write(temporary_path)`; on success fsyncs and renames it to `path` (creating parent directories). On any
// exception the temporary file is removed and the previous `path` is left untouched.
void write_file_atomically(const std::string& path, const std::function<void(const std::string&)>& write);

// Convenience: atomically replaces `path` with `text`.
void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace spvit

// Private to src/data: what the annotation parsers share.
#pragma once
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "spvit/core/error.h"

namespace spvit::data::detail {

// The whole file, or a DataError naming it.
inline std::string read_annotation_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) SPVIT_THROW(DataError, "cannot open annotations '", path, "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Line number (1-based) of byte `offset` of `text`, for parse errors.
inline size_t line_at(const std::string& text, long long offset) {
  const auto n = static_cast<long long>(text.size());
  const auto end = text.begin() + static_cast<std::ptrdiff_t>(std::clamp(offset, 0LL, n));
  return 1 + static_cast<size_t>(std::count(text.begin(), end, '\n'));
}

}  // namespace spvit::data::detail

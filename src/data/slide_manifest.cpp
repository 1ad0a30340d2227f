// SlideManifest: which slides (and annotations) make up a split — a folder convention or a CSV manifest.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "spvit/core/error.h"
#include "spvit/data/slide_dataset.h"

namespace fs = std::filesystem;

namespace spvit::data {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n\"");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n\"");
  return s.substr(b, e - b + 1);
}

// One CSV line split at commas (fields may be double-quoted; no commas inside quotes are supported: paths rarely
// have them, and the error below names the line when the column count is off).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream in(line);
  std::string field;
  while (std::getline(in, field, ',')) out.push_back(trim(field));
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

std::string resolve(const fs::path& base, const std::string& p) {
  if (p.empty()) return p;
  const fs::path path(p);
  return (path.is_absolute() ? path : base / path).lexically_normal().string();
}

std::vector<SlideEntry> from_folder(const fs::path& root) {
  const fs::path slides = root / "slides", annotations = root / "annotations";
  std::error_code ec;
  if (!fs::is_directory(slides, ec)) {
    SPVIT_THROW(DataError, "slide dataset '", root.string(), "' has no slides/ folder (expected slides/ and "
                "annotations/ with matching file stems, or a CSV manifest with columns slide,annotation,split)");
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(slides)) {
    // A MIRAX slide is a .mrxs file beside a folder of the same stem: the folder is not a slide.
    if (e.is_regular_file() && e.path().filename().string().front() != '.') files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<SlideEntry> out;
  for (const auto& f : files) {
    SlideEntry entry{f.string(), "", ""};
    for (const char* ext : {".geojson", ".json", ".xml", ".png", ".tif", ".tiff"}) {
      const fs::path a = annotations / (f.stem().string() + ext);
      if (fs::is_regular_file(a, ec)) {
        entry.annotation = a.string();
        break;
      }
    }
    if (entry.annotation.empty()) {
      SPVIT_THROW(DataError, "slide '", f.string(), "' has no annotation file: expected ",
                  (annotations / (f.stem().string() + ".geojson")).string(),
                  " (or .json, .xml; a label mask: .png, .tif, .tiff)");
    }
    out.push_back(std::move(entry));
  }
  return out;
}

std::vector<SlideEntry> from_csv(const fs::path& csv, bool* has_splits) {
  std::ifstream in(csv);
  if (!in) SPVIT_THROW(DataError, "cannot read slide manifest '", csv.string(), "'");
  std::string line;
  if (!std::getline(in, line)) SPVIT_THROW(DataError, "slide manifest '", csv.string(), "' is empty");
  if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // the byte-order mark of Excel's "CSV UTF-8"
  const auto header = csv_fields(line);
  int slide_col = -1, annotation_col = -1, split_col = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    const std::string h = lower(header[i]);
    if (h == "slide") slide_col = static_cast<int>(i);
    if (h == "annotation") annotation_col = static_cast<int>(i);
    if (h == "split") split_col = static_cast<int>(i);
  }
  if (slide_col < 0) {
    SPVIT_THROW(DataError, "slide manifest '", csv.string(), "' has no 'slide' column in its header line '", line,
                "' (columns: slide, annotation, split)");
  }
  *has_splits = split_col >= 0;
  const fs::path base = csv.parent_path();
  std::vector<SlideEntry> out;
  for (int line_no = 2; std::getline(in, line); ++line_no) {
    if (trim(line).empty()) continue;
    const auto f = csv_fields(line);
    if (f.size() != header.size()) {
      SPVIT_THROW(DataError, "slide manifest '", csv.string(), "' line ", line_no, " has ", f.size(), " fields, the "
                  "header ", header.size());
    }
    SlideEntry e;
    e.slide = resolve(base, f[static_cast<size_t>(slide_col)]);
    if (annotation_col >= 0) e.annotation = resolve(base, f[static_cast<size_t>(annotation_col)]);
    if (split_col >= 0) {  // without a split column the manifest is one split ("")
      e.split = lower(f[static_cast<size_t>(split_col)]);
      if (e.split.empty()) e.split = "train";
      if (e.split == "validation") e.split = "val";
      if (e.split != "train" && e.split != "val" && e.split != "test") {
        SPVIT_THROW(DataError, "slide manifest '", csv.string(), "' line ", line_no, ": split '", e.split,
                    "' is not train, val or test");
      }
    }
    if (e.slide.empty()) SPVIT_THROW(DataError, "slide manifest '", csv.string(), "' line ", line_no, " has no slide");
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

SlideManifest SlideManifest::read(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) SPVIT_THROW(DataError, "slide dataset '", path, "' does not exist");
  SlideManifest m;
  m.path = path;
  m.entries = fs::is_directory(path, ec) ? from_folder(path) : from_csv(path, &m.has_splits);
  if (m.entries.empty()) SPVIT_THROW(DataError, "slide dataset '", path, "' names no slide");
  return m;
}

std::vector<SlideEntry> SlideManifest::split(const std::string& name) const {
  if (!has_splits) return entries;
  std::vector<SlideEntry> out;
  for (const auto& e : entries) {
    if (e.split == name) out.push_back(e);
  }
  return out;
}

}  // namespace spvit::data

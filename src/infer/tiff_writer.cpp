// The pyramidal BigTIFF label mask (see writers.h). Needs only libtiff.
#define TIFF_DISABLE_DEPRECATED  // libtiff's deprecated int64 typedef would clash with OpenCV's
#include <tiffio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "spvit/core/atomic_file.h"
#include "spvit/core/error.h"
#include "spvit/infer/writers.h"

namespace spvit::infer {
namespace {
TIFF* tiff(void* p) { return static_cast<TIFF*>(p); }
}  // namespace

PyramidTiffWriter::PyramidTiffWriter(const std::string& path, int64_t width, int64_t height, double mpp, Kind kind)
    : path_(path), tmp_(path + ".tmp"), width_(width), height_(height), mpp_(mpp), kind_(kind),
      channels_(kind == Kind::Rgb ? 3 : 1) {
  SPVIT_CHECK(width > 0 && height > 0, "pyramidal TIFF '", path, "' would be empty (", width, "x", height, ")");
  int64_t w = width, h = height;
  level_width_.push_back(w), level_height_.push_back(h);
  while (std::max(w, h) > kTile) {
    w = (w + 1) / 2, h = (h + 1) / 2;
    level_width_.push_back(w), level_height_.push_back(h);
  }
  tif_ = TIFFOpen(tmp_.c_str(), "w8");  // BigTIFF: a 100,000² mask is 10 GB uncompressed
  if (tif_ == nullptr) throw WriteError(write_failure_message(tmp_, errno != 0 ? errno : EIO, "creating"));
  for (size_t k = 1; k < level_width_.size(); ++k) {
    spool_paths_.push_back(path + ".level" + std::to_string(k) + ".tmp");
    std::FILE* f = std::fopen(spool_paths_.back().c_str(), "w+b");
    if (f == nullptr) throw WriteError(write_failure_message(spool_paths_.back(), errno, "creating a spool file"));
    spools_.push_back(f);
  }
  buffer_.assign(static_cast<size_t>(kTile * width_ * channels_), 0);
  if (kind_ == Kind::Rgb) {
    for (size_t k = 1; k < level_width_.size(); ++k) sums_.emplace_back(static_cast<size_t>(level_width_[k] * 3), uint64_t{0});
  }
  start_directory(0);
}

PyramidTiffWriter::~PyramidTiffWriter() {
  if (tif_ != nullptr) TIFFClose(tiff(tif_));
  for (auto* f : spools_) {
    if (f != nullptr) std::fclose(f);
  }
  std::error_code ec;
  for (const auto& p : spool_paths_) std::filesystem::remove(p, ec);
  if (!finished_) std::filesystem::remove(tmp_, ec);
}

void PyramidTiffWriter::start_directory(int level) {
  TIFF* t = tiff(tif_);
  TIFFSetField(t, TIFFTAG_SUBFILETYPE, level == 0 ? 0 : FILETYPE_REDUCEDIMAGE);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(level_width_[static_cast<size_t>(level)]));
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(level_height_[static_cast<size_t>(level)]));
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, channels_);
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, kind_ == Kind::Rgb ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_TILEWIDTH, static_cast<uint32_t>(kTile));
  TIFFSetField(t, TIFFTAG_TILELENGTH, static_cast<uint32_t>(kTile));
  TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
  TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, kind_ == Kind::Rgb ? "spvit slide (RGB)" : "spvit label mask (uint8 class ids)");
  if (mpp_ > 0) {
    const double ds = static_cast<double>(1 << level);
    TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
    TIFFSetField(t, TIFFTAG_XRESOLUTION, static_cast<float>(1e4 / (mpp_ * ds)));
    TIFFSetField(t, TIFFTAG_YRESOLUTION, static_cast<float>(1e4 / (mpp_ * ds)));
  }
}

void PyramidTiffWriter::write_tile_row(const uint8_t* rows, int64_t nrows, int64_t width, int64_t tile_row) {
  const int64_t C = channels_;
  std::vector<uint8_t> tile(static_cast<size_t>(kTile * kTile * C));
  for (int64_t x0 = 0; x0 < width; x0 += kTile) {
    std::fill(tile.begin(), tile.end(), kind_ == Kind::Rgb ? 255 : 0);  // outside the image: glass, or background
    const int64_t w = std::min(kTile, width - x0);
    for (int64_t r = 0; r < nrows; ++r) {
      std::memcpy(&tile[static_cast<size_t>(r * kTile * C)], rows + (r * width + x0) * C, static_cast<size_t>(w * C));
    }
    const auto index = TIFFComputeTile(tiff(tif_), static_cast<uint32_t>(x0), static_cast<uint32_t>(tile_row * kTile), 0, 0);
    if (TIFFWriteEncodedTile(tiff(tif_), index, tile.data(), static_cast<tmsize_t>(tile.size())) < 0) {
      throw WriteError(write_failure_message(path_, errno != 0 ? errno : EIO, "writing a tile"));
    }
  }
}

void PyramidTiffWriter::flush_level0_rows() {
  if (buffered_ == 0) return;
  write_tile_row(buffer_.data(), buffered_, width_, tile_row_++);
  buffered_ = 0;
}

void PyramidTiffWriter::spool(size_t level, const uint8_t* row) {
  const auto bytes = static_cast<size_t>(level_width_[level] * channels_);
  if (std::fwrite(row, 1, bytes, spools_[level - 1]) != bytes) {
    throw WriteError(write_failure_message(spool_paths_[level - 1], errno, "writing a spool file"));
  }
}

void PyramidTiffWriter::reduce_row(const uint8_t* src) {
  std::vector<uint8_t> sub;
  for (size_t k = 1; k < level_width_.size(); ++k) {
    const int64_t step = int64_t{1} << k, w = level_width_[k];
    sub.resize(static_cast<size_t>(w * channels_));
    if (kind_ == Kind::Labels) {  // the top-left pixel of each block
      if (rows_done_ % step != 0) continue;
      for (int64_t i = 0; i < w; ++i) sub[static_cast<size_t>(i)] = src[i * step];
      spool(k, sub.data());
      continue;
    }
    auto& sums = sums_[k - 1];  // Rgb: add this row to its blocks; a block row is done after `step` rows (or the last)
    for (int64_t i = 0; i < w; ++i) {
      for (int64_t x = i * step; x < std::min((i + 1) * step, width_); ++x) {
        for (int c = 0; c < 3; ++c) sums[static_cast<size_t>(3 * i + c)] += src[3 * x + c];
      }
    }
    const int64_t rows_in_block = rows_done_ % step + 1;
    if (rows_in_block != step && rows_done_ + 1 != height_) continue;
    for (int64_t i = 0; i < w; ++i) {
      const double pixels = static_cast<double>(rows_in_block * (std::min((i + 1) * step, width_) - i * step));
      for (int c = 0; c < 3; ++c) {
        auto& s = sums[static_cast<size_t>(3 * i + c)];
        sub[static_cast<size_t>(3 * i + c)] = static_cast<uint8_t>(std::lround(static_cast<double>(s) / pixels));
        s = 0;
      }
    }
    spool(k, sub.data());
  }
}

void PyramidTiffWriter::append(const cv::Mat& rows) {
  SPVIT_CHECK(rows.type() == (kind_ == Kind::Rgb ? CV_8UC3 : CV_8U) && rows.cols == width_, "rows of '", path_,
              "' must be ", width_, " columns of ", kind_ == Kind::Rgb ? "8-bit RGB" : "uint8 labels");
  SPVIT_CHECK(rows_done_ + rows.rows <= height_, "more rows than the height ", height_, " of '", path_, "'");
  const auto row_bytes = static_cast<size_t>(width_ * channels_);
  for (int r = 0; r < rows.rows; ++r, ++rows_done_) {
    const uint8_t* src = rows.ptr<uint8_t>(r);
    std::memcpy(&buffer_[static_cast<size_t>(buffered_) * row_bytes], src, row_bytes);
    if (++buffered_ == kTile) flush_level0_rows();
    reduce_row(src);
  }
}

void PyramidTiffWriter::finish() {
  SPVIT_CHECK(rows_done_ == height_, "pyramidal TIFF '", path_, "' got ", rows_done_, " of ", height_, " rows");
  flush_level0_rows();
  TIFF* t = tiff(tif_);
  if (!TIFFWriteDirectory(t)) throw WriteError(write_failure_message(path_, errno != 0 ? errno : EIO, "writing level 0"));
  for (size_t k = 1; k < level_width_.size(); ++k) {
    start_directory(static_cast<int>(k));
    std::FILE* f = spools_[k - 1];
    std::rewind(f);
    const int64_t w = level_width_[k], h = level_height_[k], row_bytes = w * channels_;
    std::vector<uint8_t> rows(static_cast<size_t>(kTile * row_bytes));
    for (int64_t tr = 0; tr * kTile < h; ++tr) {
      const int64_t n = std::min(kTile, h - tr * kTile);
      if (std::fread(rows.data(), 1, static_cast<size_t>(n * row_bytes), f) != static_cast<size_t>(n * row_bytes)) {
        SPVIT_THROW(DataError, "cannot read back spool file '", spool_paths_[k - 1], "'");
      }
      write_tile_row(rows.data(), n, w, tr);
    }
    if (!TIFFWriteDirectory(t)) {
      throw WriteError(write_failure_message(path_, errno != 0 ? errno : EIO, "writing level " + std::to_string(k)));
    }
  }
  TIFFClose(t);
  tif_ = nullptr;
  commit_temporary_file(tmp_, path_);  // flushed, renamed, directory flushed (WriteError on failure)
  finished_ = true;
}

}  // namespace spvit::infer

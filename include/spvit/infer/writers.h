// The outputs of `spvit infer`, each written to a temporary name in the output folder and renamed when complete:
// a pyramidal tiled BigTIFF label mask, GeoJSON polygons per class, a PNG overlay of the thumbnail.
#pragma once
#include <opencv2/core.hpp>

#include <cstdint>
#include <cstdio>
#include <array>
#include <string>
#include <vector>

namespace spvit::infer {

// The regions (8-connected) of a binary image as OpenCV contours: each region's outer border and the borders of its
// holes, what cv::findContours with RETR_CCOMP gives. RETR_CCOMP's parent search is quadratic in the number of
// contours (an 8192² label image of a whole slide's nuclei, ~10^6 contours, takes hours); this takes RETR_LIST's
// borders (linear), tells holes by their orientation and gives each to the connected component its border runs
// through (tests: equal to RETR_CCOMP's grouping).
struct RegionContours {
  std::vector<cv::Point> outer;
  std::vector<std::vector<cv::Point>> holes;
};
std::vector<RegionContours> region_contours(const cv::Mat& binary);

// A pyramidal tiled BigTIFF (256 × 256 deflate tiles, down to a larger side <= 256), the levels as successive IFDs
// (what OpenSlide's generic-tiff reader and QuPath expect), of either
//   Labels: uint8 class ids, one grey channel; level k is level 0 subsampled 2^k× (nearest: the top-left pixel of
//           each block — labels are never averaged), or
//   Rgb:    8-bit RGB (a slide); level k is the mean of each 2^k × 2^k block of level 0 (its in-image pixels).
// Level 0 is written tile row by tile row as rows arrive (256 rows buffered); the smaller levels are reduced while
// streaming into spool files beside the output and appended after level 0, 256 rows at a time, so memory stays at
// 256 rows per level.
class PyramidTiffWriter {
 public:
  enum class Kind { Labels, Rgb };
  // `mpp` (micrometres per pixel of level 0, 0 = unknown) goes to each level's resolution tags.
  PyramidTiffWriter(const std::string& path, int64_t width, int64_t height, double mpp = 0, Kind kind = Kind::Labels);
  ~PyramidTiffWriter();  // removes the temporary files unless finish() succeeded
  PyramidTiffWriter(const PyramidTiffWriter&) = delete;
  PyramidTiffWriter& operator=(const PyramidTiffWriter&) = delete;

  // The next rows (CV_8U for Labels, CV_8UC3 RGB for Rgb; width columns), top to bottom.
  void append(const cv::Mat& rows);
  // Writes the smaller levels, closes the file and renames it to the final path. All rows must have been appended.
  void finish();
  int levels() const { return static_cast<int>(level_width_.size()); }

  static constexpr int64_t kTile = 256;

 private:
  void flush_level0_rows();
  void write_tile_row(const uint8_t* rows, int64_t nrows, int64_t width, int64_t tile_row);
  void start_directory(int level);
  void spool(size_t level, const uint8_t* row);  // one row of a smaller level
  void reduce_row(const uint8_t* src);          // the current level-0 row into every smaller level

  std::string path_, tmp_;
  void* tif_ = nullptr;  // TIFF*
  int64_t width_, height_;
  double mpp_;
  Kind kind_;
  int channels_;
  int64_t rows_done_ = 0;
  std::vector<std::vector<uint64_t>> sums_;  // Rgb: per smaller level, the block sums of the rows so far
  std::vector<uint8_t> buffer_;  // kTile rows of level 0
  int64_t buffered_ = 0, tile_row_ = 0;
  std::vector<int64_t> level_width_, level_height_;
  std::vector<std::string> spool_paths_;
  std::vector<std::FILE*> spools_;
  bool finished_ = false;
};

// A bounded-size copy of the label image for the GeoJSON and the overlay: every `factor`-th pixel of every
// `factor`-th row, with factor the smallest power of two making the larger side <= max_side.
class ReducedLabels {
 public:
  ReducedLabels(int64_t width, int64_t height, int64_t max_side = 4096);
  void append(int64_t y0, const cv::Mat& rows);
  const cv::Mat& image() const { return image_; }
  int64_t factor() const { return factor_; }

 private:
  cv::Mat image_;
  int64_t factor_ = 1;
};

// Colours of the classes by id, RGB (train::class_colour_table); an id past the end takes the default palette's.
using ClassColours = std::vector<std::array<uint8_t, 3>>;
// Colour of class k (k = 0 is background) in the overlay, the GeoJSON classification and the ASAP groups.
cv::Vec3b class_colour(int k, const ClassColours& colours = {});

// GeoJSON FeatureCollection: one MultiPolygon Feature per foreground class present, from the contours of `labels`
// (OpenCV findContours with holes, simplified by approxPolyDP with `epsilon` pixels of `labels`, then made valid by
// GEOS: the simplification can make a ring cross itself, which QuPath would reject), coordinates
// multiplied by `scale` (level-0 pixels per pixel of `labels`) less `origin` (the scanned area's level-0 corner of a
// slide with bounds, which QuPath's coordinates start from). Returns the number of polygons.
int64_t write_geojson(const std::string& path, const cv::Mat& labels, double scale,
                      const std::vector<std::string>& class_names, double epsilon = 1.0,
                      std::array<double, 2> origin = {0, 0}, const ClassColours& colours = {});

// ASAP XML (ASAP_Annotations): the same class regions as write_geojson, as Polygon annotations whose PartOfGroup is
// the class name, plus one AnnotationGroup per class with its colour. ASAP polygons have no holes, so a polygon with
// holes is written as pieces without holes covering the same pixel centres (data::PolygonGeometry::hole_free).
// Returns the number of annotations.
int64_t write_asap_xml(const std::string& path, const cv::Mat& labels, double scale,
                       const std::vector<std::string>& class_names, double epsilon = 1.0,
                       std::array<double, 2> origin = {0, 0}, const ClassColours& colours = {});

// The thumbnail (RGB) with the labels (resized nearest to it) coloured over the foreground, as PNG.
void write_overlay_png(const std::string& path, const cv::Mat& thumbnail_rgb, const cv::Mat& labels,
                       const ClassColours& colours = {});

}  // namespace spvit::infer

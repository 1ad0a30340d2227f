// Whole-slide inference end to end: level choice, tissue detection, the streaming tiler, and the writers
// (mask.tiff, polygons.geojson, overlay.png, summary.json in the output folder).
#pragma once
#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "spvit/infer/slide.h"
#include "spvit/infer/tiler.h"
#include "spvit/infer/tissue.h"

namespace spvit::infer {

struct InferOptions {
  std::string out_dir = "infer";
  int level = -1;     // slide level to run on; -1: from mpp, else 0
  double mpp = 0;     // micrometres per pixel wanted (0: unused): that level, or resampled from the next finer one
  TilerOptions tiler;
  TissueOptions tissue;
  std::set<std::string> formats{"tiff", "geojson", "png", "json"};
  std::vector<std::string> class_names;  // index = class id; its size is the number of classes
  std::vector<std::array<uint8_t, 3>> class_colours;  // index = class id (RGB); missing ids: the default palette
  int64_t reduced_side = 4096;           // larger side of the label image the GeoJSON and overlay are drawn from
  int64_t thumbnail_side = 2048;
};

struct InferResult {
  int level = 0;            // the slide level run on; -1 for a resampled level (InferOptions::mpp between levels)
  double downsample = 1.0;  // level-0 pixels per output pixel
  TilerStats stats;
  std::string summary_json;  // what summary.json holds
  // Rank 0: the first output that could not be written ("" = all written). The caller agrees on it with every
  // rank (dist::agree_on_write_errors), so that all of them stop with the same exit code.
  std::string write_error;
};

// Parses "tiff,geojson,png,json" (any subset); throws ConfigError naming an unknown format.
std::set<std::string> parse_formats(const std::string& list);

// Runs inference. With several data ranks (options.tiler.world > 1 and .reduce set) every rank calls it; only
// rank 0 writes outputs.
InferResult run_inference(const Slide& slide, const TilePredictor& predict, const InferOptions& options);

// Peak resident memory of this process in bytes (getrusage).
int64_t peak_rss_bytes();

}  // namespace spvit::infer

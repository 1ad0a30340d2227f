// Streaming tiled inference with overlap and blending, stripe by stripe.
//
// Tiles of T × T pixels of one slide level start every S = T - O pixels (the last tile of a row or column is moved
// back to end at the image edge; an image smaller than T gets one tile reaching past its edge, read as white). One
// row of tiles at a time is run through the model; each tile's class probabilities are multiplied by a blending
// window (Gaussian or linear ramp, positive everywhere) and added to a stripe accumulator of T rows × image width
// (C + 1 float planes: probabilities and the weight sum). When a row of tiles is done, the rows no later tile can
// touch are finished — normalised, argmax → uint8 labels — handed to the sink and dropped. Memory is therefore
// (C + 1) · T · W floats, whatever the slide height; nothing is ever allocated per slide.
//
// Tiles that do not touch tissue are not run. A pixel that no run tile covers is background (label 0); a pixel
// covered by at least one run tile gets the blended prediction of the run tiles covering it.
#pragma once
#include <torch/torch.h>

#include <opencv2/core.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "spvit/infer/slide.h"
#include "spvit/infer/tissue.h"

namespace spvit::infer {

// The model: [B, 3, T, T] float RGB in [0, 1] -> [B, C, T, T] class probabilities.
using TilePredictor = std::function<torch::Tensor(const torch::Tensor& rgb_batch)>;

// Finished rows [y0, y0 + labels.rows) of the label image (CV_8U, image width), and when asked for, their blended
// probabilities [C, rows, W] float32 (zero where no tile ran).
using RowSink = std::function<void(int64_t y0, const cv::Mat& labels, const torch::Tensor& probabilities)>;

struct TilerOptions {
  int64_t tile = 128;
  int64_t overlap = 32;
  int64_t batch = 4;
  std::string blend = "gaussian";  // gaussian | linear
  bool probabilities = false;      // also pass blended probabilities to the sink (tests)
  // Data ranks: this rank runs the tissue tiles whose index % world == rank; `reduce` sums a stripe accumulator
  // over the ranks (in place, every rank gets the sum); only rank 0's sink is called.
  int rank = 0, world = 1;
  std::function<void(torch::Tensor&)> reduce;
  // A rank of a sequence group other than its first (spvit infer --seq): it runs the same tiles as the group's first
  // rank (its model call takes part in the group's collectives) but neither accumulates, reduces nor outputs.
  bool follower = false;
  // Tissue tiles run so far (all ranks) / to run: called with 0 when tiling starts, then after every batch.
  std::function<void(int64_t done, int64_t total)> progress;
};

struct TilerStats {
  int64_t width = 0, height = 0;          // of the level
  int64_t tiles_total = 0, tiles_run = 0, tiles_skipped = 0;
  int64_t covered_pixels = 0;             // pixels under at least one run tile
  std::vector<int64_t> class_pixels;      // label histogram of the level
  double seconds = 0;
};

// Tile origins along an axis of `length` pixels.
std::vector<int64_t> tile_origins(int64_t length, int64_t tile, int64_t overlap);
// The blending window [T, T] float32, > 0 everywhere.
torch::Tensor blend_window(int64_t tile, int64_t overlap, const std::string& blend);

// Runs `predict` over the level `level` of `slide` — one of its levels, or any downsample (Slide::read_scaled) — on
// the tiles that touch `tissue` (all when it is null) and streams the labels to `sink`. `classes` is C.
TilerStats run_tiled(const Slide& slide, const SlideLevel& level, const TissueMask* tissue,
                     const TilePredictor& predict, int64_t classes, const TilerOptions& options, const RowSink& sink);

}  // namespace spvit::infer

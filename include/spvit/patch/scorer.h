// Detail scorers for the adaptive patcher: how much a square (cube) region of the image deserves to be refined.
//
// A scorer turns the image into one or two integer-valued per-pixel maps (edge pixels, intensity and its square,
// gradient magnitude, texture entropy); RegionScores sums them over any leaf in O(1) with summed-area tables.
// Integer maps make every region sum exact, so the same image gives bit-identical scores (and hence the same tree)
// on every rank, every run, every thread count and every device.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "spvit/core/registry.h"

namespace spvit::patch {

struct ScorerOptions {
  // edges: Gaussian blur (odd kernel, 1 = none; sigma 0 = derived from the kernel) then Canny(low, high).
  int64_t blur_kernel = 5;
  double blur_sigma = 0.0;
  double canny_low = 75.0;
  double canny_high = 125.0;
  // Augmentation (the paper's): per sample draw low from [50, 100), high = low + 50, kernel from {1, 3, 5, 7};
  // the draw depends only on (seed, sample), so every rank draws the same.
  bool augment = false;
  uint64_t seed = 0;
  // texture: side of the blocks over which the local-binary-pattern histogram entropy is measured.
  int64_t texture_window = 16;
};

// Summed-area table (summed-volume table in 3D) of an integer map, at the resolution of `cell`-sided cells: every
// leaf corner and side is a multiple of the smallest leaf side, so cells of that side lose nothing and the table is
// cell² times smaller than a per-pixel one.
class SummedAreaTable {
 public:
  SummedAreaTable() = default;
  // map: integer or bool tensor with the image's spatial shape ([H, W] or [D, H, W]), any device; power 2 sums
  // the squares of its values.
  SummedAreaTable(const torch::Tensor& map, int64_t cell, int power = 1);
  // Sum of the map over the pixel box [lo, hi) given in coordinate order (x, y[, z]), clipped to the map. lo and the
  // unclipped hi must be multiples of the cell side.
  int64_t sum(const int64_t* lo, const int64_t* hi) const;
  int64_t cell() const { return cell_; }

 private:
  torch::Tensor table_;              // CPU int64, (cells + 1) per axis, tensor axis order
  std::vector<int64_t> extent_;      // map extent in pixels, coordinate order
  std::vector<int64_t> strides_;     // table strides, coordinate order
  int dims_ = 0;
  int64_t cell_ = 1;
};

// How a region's score is formed from the sums of the scorer's maps.
enum class ScoreCombine {
  Sum,                // score = Σ map (edge pixels, gradient magnitude, texture)
  SquaredDeviation,   // one map v, tables of v and v²: score = Σ (v - mean)² = n·variance (extensive, so big
                      // flat-ish regions compete with small busy ones)
};

// The O(1) region-score oracle the tree refinement queries.
class RegionScores {
 public:
  RegionScores(std::vector<SummedAreaTable> tables, ScoreCombine combine, std::vector<int64_t> image_size);
  // Score of the leaf with corner (x, y[, z]) and the given side; padding contributes nothing.
  double score(const int64_t* corner, int64_t side) const;
  const std::vector<int64_t>& image_size() const { return image_size_; }  // tensor order

 private:
  std::vector<SummedAreaTable> tables_;
  ScoreCombine combine_;
  std::vector<int64_t> image_size_;
  std::vector<int64_t> extent_;  // coordinate order
};

class Scorer {
 public:
  virtual ~Scorer() = default;
  const std::string& name() const { return name_; }  // its registry name (set by make_scorer)
  virtual ScoreCombine combine() const { return ScoreCombine::Sum; }
  // Integer per-pixel maps of `image` ([H, W, C] or [D, H, W, C], any dtype and device); `sample` selects the
  // augmentation draw where the scorer has one.
  virtual std::vector<torch::Tensor> pixel_maps(const torch::Tensor& image, int spatial_dims,
                                                uint64_t sample) const = 0;
  // Maps + tables: the whole O(pixels) scoring stage.
  RegionScores index(const torch::Tensor& image, int spatial_dims, int64_t cell, uint64_t sample = 0) const;

 private:
  friend std::unique_ptr<Scorer> make_scorer(const std::string& name, const ScorerOptions& options);
  std::string name_;
};

// The scorer registry (core/registry.h): the one list of scorer names, selected by data.patcher.scorer.
struct ScorerEntry {
  std::string name;
  std::string summary;
  bool needs_opencv = false;  // refused by the configuration check in builds without OpenCV
  bool uses_canny = false;    // reads blur_kernel, canny_low/high and the per-sample threshold jitter
  std::function<std::unique_ptr<Scorer>(const ScorerOptions&)> make;
};
const Registry<ScorerEntry>& scorers();

// The registered scorer of that name. Throws ConfigError for an unknown name.
std::unique_ptr<Scorer> make_scorer(const std::string& name, const ScorerOptions& options = {});
std::vector<std::string> scorer_names();  // scorers().names()

// Checks that `image` is a non-empty [H, W, C] (2D) or [D, H, W, C] (3D) tensor; throws DataError otherwise.
void check_image(const torch::Tensor& image, int spatial_dims, const char* what);
// 8-bit intensity [spatial...] (uint8): RGB(A) -> luminance (ITU-R 601, integer weights), other channel counts ->
// channel mean. Floating images are taken to be in [0, 1]; integer images in [0, 255]; values are clamped.
torch::Tensor to_gray(const torch::Tensor& image);

// The Canny thresholds and blur kernel a sample uses (the fixed options, or the per-sample augmentation draw).
struct EdgeParams {
  int64_t blur_kernel;
  double blur_sigma, low, high;
};
EdgeParams edge_params(const ScorerOptions& options, uint64_t sample);

// Per-pixel maps, exposed for tests and for the CLI.
torch::Tensor edge_map(const torch::Tensor& gray, const EdgeParams& params);   // 0/1 uint8, needs OpenCV
torch::Tensor gradient_map(const torch::Tensor& gray);  // |I(x+1)-I(x-1)| + |I(y+1)-I(y-1)| [+ z], replicated border
torch::Tensor lbp_codes(const torch::Tensor& gray);     // rotation-invariant uniform LBP(8,1) per 2D slice: 0..9
// Entropy (bits · 1024, rounded) of the LBP-code histogram of each window×window block (per slice), spread to the
// block's pixels.
torch::Tensor texture_map(const torch::Tensor& gray, int64_t window);

}  // namespace spvit::patch

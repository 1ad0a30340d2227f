// Tissue detection on a low-resolution image of a slide: where slide training draws its samples from and which tiles
// `spvit infer` runs (docs/data.md, "Tissue detection"). One detector for both.
//
// auto : a pixel is tissue when its HSV saturation exceeds max(Otsu threshold, min_saturation) — so an empty glass
//        slide stays empty — or, when `min_darkness` > 0, when it is at least that much darker than white
//        (255 - mean of R, G, B): pale tissue (loose stroma, fat septa, faint IHC counterstain) has little colour but is
//        not glass. Then a morphological close and open, and connected components below `min_area_um2` µm² (or
//        `min_area_px` level-0 pixels when the slide has no mpp) removed. Presets (TissueOptions::preset):
//          standard : saturated H&E tissue only (saturation Otsu, min 20; no darkness test)
//          pale     : also pale tissue (saturation > 8, no Otsu, or darkness >= 18; larger close)
//          ihc      : faint counterstain (saturation > 6, no Otsu, or darkness >= 14)
// none : everything is tissue.
// mask : a user image (any size; non-zero = tissue) stretched over the whole slide (mode = its path).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "spvit/data/slide.h"

namespace spvit::data {

struct TissueOptions {
  std::string mode = "auto";     // auto | none | path to a mask image
  int64_t max_side = 2048;       // detect on the largest level (or a resize of it) no bigger than this
  double min_saturation = 20;    // lower bound of the Otsu threshold (0..255)
  double min_darkness = 0;       // 0 = off; else also tissue when 255 - mean(R, G, B) >= this
  int64_t morph_radius = 2;      // structuring element radius in mask pixels
  double min_area_px = 64 * 64;  // minimum component area in level-0 pixels (slides without mpp)
  double min_area_um2 = 0;       // minimum component area in µm² (used instead of min_area_px when > 0 and known)

  // standard | pale | ihc: the preset's values for the fields above (mode and max_side unchanged). Throws
  // ConfigError naming the known presets.
  static TissueOptions preset(const std::string& name);
  static const std::vector<std::string>& preset_names();
  // The options as a short text, part of the tissue cache's key (a changed option is a new mask).
  std::string key() const;
};

class TissueMask {
 public:
  // Detects (or loads) the mask of `slide`. A slide without tissue gives an empty mask (and a warning).
  static TissueMask detect(const Slide& slide, const TissueOptions& options);
  // detect(), remembered in `cache_dir` (created if needed) as a PNG keyed by the slide's path, size, modification
  // time and the options: a second run, or every rank after the first, loads it instead of reading the slide again.
  // An unwritable cache directory is a warning, not an error. cache_dir "" = no cache.
  static TissueMask detect_cached(const Slide& slide, const TissueOptions& options, const std::string& cache_dir);
  // A mask given directly: `mask` (uint8 [h, w], non-zero = tissue) spans the level-0 size width0 × height0.
  TissueMask(torch::Tensor mask, int64_t width0, int64_t height0);

  // Does the level-0 box [x0, x1) × [y0, y1) touch tissue?
  bool touches(int64_t x0, int64_t y0, int64_t x1, int64_t y1) const;
  // The fraction of the level-0 box (in mask cells, parts outside the slide included) that is tissue.
  double fraction(int64_t x0, int64_t y0, int64_t x1, int64_t y1) const;
  bool empty() const { return tissue_pixels_ == 0; }
  double tissue_fraction() const;
  const torch::Tensor& mask() const { return mask_; }  // uint8 [h, w], 1 = tissue
  double scale_x() const { return sx_; }               // level-0 pixels per mask pixel
  double scale_y() const { return sy_; }

 private:
  int64_t count(int64_t x0, int64_t y0, int64_t x1, int64_t y1, int64_t* cells) const;
  torch::Tensor mask_;
  std::vector<int64_t> integral_;  // (h + 1) × (w + 1) summed-area table of mask_
  double sx_ = 1, sy_ = 1;
  int64_t tissue_pixels_ = 0;
};

// The low-resolution RGB image of `slide` tissue detection and the inference overlay use (larger side <= max_side):
// uint8 [h, w, 3].
torch::Tensor slide_thumbnail(const Slide& slide, int64_t max_side);

}  // namespace spvit::data

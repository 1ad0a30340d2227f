// Label-mask annotations of a slide (docs/data.md, "Label masks"): an 8-bit greyscale image — a PNG, or a (pyramidal)
// TIFF as OpenSlide reads it — whose value at each pixel names the class there, covering the slide's level 0 at a
// stated downsample (data.mask_downsample: level-0 pixels per mask pixel; 0 = from the two sizes).
//
// Classes: value v is the class named "v" in data.classes (e.g. data.classes: {"1": 1, "2": 2, "255": 1}, or
// "2": ignore); 0 is unannotated (data.unannotated: background or ignore) unless data.classes names "0". A value
// data.classes does not name is an error naming the mask and listing the known names.
// Resampling: a training pixel takes the value of the mask pixel under its centre (nearest: labels are never
// averaged), always read from the mask's full-resolution level, so a mask pyramid built by averaging changes nothing.
#pragma once
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "spvit/data/annotations.h"

namespace spvit::data {

class Slide;

// Whether an annotation path is a label mask (by extension: .png, .tif, .tiff) rather than vector annotations.
bool is_label_mask_path(const std::string& path);

class LabelMask {
 public:
  // Opens `path` for a slide whose level 0 is `slide_width` × `slide_height`. Throws DataError naming the file when
  // it cannot be read, is not 8-bit, or does not cover the slide at `downsample` (its size must be the slide's
  // divided by it, rounded either way; with 0, the two sides must agree on one downsample).
  LabelMask(const std::string& path, int64_t slide_width, int64_t slide_height, double downsample = 0);
  ~LabelMask();
  LabelMask(const LabelMask&) = delete;
  LabelMask& operator=(const LabelMask&) = delete;

  const std::string& path() const { return path_; }
  int64_t width() const { return width_; }
  int64_t height() const { return height_; }
  double downsample() const { return ds_; }  // level-0 pixels per mask pixel

  // The labels (int64 [grid.height, grid.width]) of `grid`: each pixel the class of the mask pixel under its centre;
  // centres off the mask get `background`, like value 0. Throws DataError naming the mask for a value `classes` does
  // not name or a pixel that is not grey (R, G, B differ).
  torch::Tensor labels(const RasterGrid& grid, const ClassMap& classes, int64_t background) const;

  // The mask's values at a coarse scale (larger side <= max_side where the mask has such a level or is held whole),
  // uint8 [h, w], and the level-0 pixels per pixel of it: for class statistics and class-balanced sampling, where an
  // averaged pyramid's in-between values only miscount borders.
  std::pair<torch::Tensor, double> overview(int64_t max_side = 2048) const;

  // Label of each value 0..255 under `classes` (0 -> background unless named); -2 where the value has no class.
  static std::array<int64_t, 256> value_labels(const ClassMap& classes, int64_t background);
  static constexpr int64_t kNoClass = -2;

 private:
  // The values of mask box [x0, x1) × [y0, y1) (inside the mask), uint8 [y1 - y0, x1 - x0].
  torch::Tensor values(int64_t x0, int64_t y0, int64_t x1, int64_t y1) const;

  std::string path_;
  int64_t width_ = 0, height_ = 0;
  double ds_ = 1;
  std::unique_ptr<Slide> pyramid_;  // tiled TIFFs through OpenSlide ...
  torch::Tensor whole_;             // ... or the whole mask (PNG, plain TIFF), uint8 [height, width]
};

}  // namespace spvit::data

// Augmentation drawn once per (seed, epoch, sample index), so every rank of a sequence group (which reads the same
// sample) gets the same draw without communicating, and applied either to a whole sample or to one rank's region.
//
// The spatial transform is out = rot90(flip(in)): first the flips of the original sample (z, y, x), then a rotation
// by rot90 × 90° in the (y, x) plane (torch::rot90 on the y and x dims). Odd rotations of a non-square (y, x) plane
// would change the sample's shape, so there rot90 is taken modulo 2 (180° turns stay). Colour jitter is per pixel:
// image' = clamp((image - 0.5) * contrast + 0.5 + brightness, 0, 1), masks unchanged. The threshold scale touches no
// pixel: the trainer multiplies the adaptive patcher's scorer thresholds by it, so layouts vary per draw too.
// Stain jitter (RGB only, before the colour jitter; Tellez et al. 2018's HED augmentation): each pixel's colour is
// deconvolved into haematoxylin, eosin and residual (DAB) densities with skimage's rgb2hed matrices, density s becomes
// s · scale_s + shift_s, and hed2rgb gives the colour back (clamped to [0, 1]).
//
// Sharded reads: because every step maps boxes onto boxes, the pixels of `region` of the augmented sample come from
// the box preimage(region) of the original, and
//   apply_augmentation_to_region(read(preimage(r)), draw, r, shape) == crop(apply_augmentation(read()), r)
// exactly (tests/data/test_augment.cpp checks it for every draw).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "spvit/data/dataset.h"

namespace spvit::data {

struct AugmentOptions {
  bool flips = true;
  bool rot90 = true;
  double color_jitter = 0.1;  // brightness in [-j, j], contrast in [1 - j, 1 + j]
  double threshold_jitter = 0.0;  // adaptive patcher: scorer thresholds scaled by [1 - j, 1 + j]
  double stain_jitter = 0.0;      // H, E, D densities scaled by [1 - j, 1 + j] and shifted by [-j, j] (RGB images)
};

struct AugmentDraw {
  bool flip_y = false, flip_x = false;
  int rot90 = 0;  // quarter turns, 0..3
  double brightness = 0.0, contrast = 1.0;
  bool flip_z = false;  // 3D samples only
  double threshold_scale = 1.0;  // factor on the adaptive patcher's scorer thresholds (the layout, not the pixels)
  std::array<double, 3> stain_scale{1.0, 1.0, 1.0}, stain_shift{0.0, 0.0, 0.0};  // H, E, D
  bool stains_jittered() const { return stain_scale != std::array<double, 3>{1.0, 1.0, 1.0} || stain_shift != std::array<double, 3>{}; }
  bool operator==(const AugmentDraw& o) const {
    return flip_y == o.flip_y && flip_x == o.flip_x && rot90 == o.rot90 && brightness == o.brightness &&
           contrast == o.contrast && flip_z == o.flip_z && threshold_scale == o.threshold_scale &&
           stain_scale == o.stain_scale && stain_shift == o.stain_shift;
  }
};

AugmentDraw draw_augmentation(const AugmentOptions& options, uint64_t seed, int64_t epoch, int64_t index);

// Applies the draw to a whole sample (image and mask consistently; colour jitter to the image only).
Sample apply_augmentation(const Sample& sample, const AugmentDraw& draw);

// The box of the ORIGINAL sample (spatial shape `full_shape`) whose pixels end up in `region_of_augmented`.
Region preimage(const Region& region_of_augmented, const AugmentDraw& draw, const std::vector<int64_t>& full_shape);

// `preimage_sample` holds (at least) preimage(target) of the original sample; returns `target` of the augmented one.
Sample apply_augmentation_to_region(const Sample& preimage_sample, const AugmentDraw& draw, const Region& target,
                                    const std::vector<int64_t>& full_shape);

// The stain jitter alone on an RGB image [..., 3] float32 in [0, 1] (per pixel; see the top of this file).
torch::Tensor jitter_stains(const torch::Tensor& rgb, const std::array<double, 3>& scale,
                            const std::array<double, 3>& shift);

// The quarter turns actually applied to a sample of this shape (rot90 mod 2 for a non-square (y, x) plane).
int effective_rot90(const AugmentDraw& draw, const std::vector<int64_t>& full_shape);

}  // namespace spvit::data

// Resampling 3D volumes to another voxel spacing (data.spacing; docs/data.md, "Volumes"): images linearly
// (trilinear, separable), label maps by nearest neighbour, and probabilities back to an input's grid after 3D
// inference. Slab by slab along the first (slowest) axis, so a volume never has to be held at both spacings.
//
// Grid convention (SimpleITK's with the origin kept): output voxel o along an axis sits at input coordinate
// o · step, step = output spacing / input spacing, so voxel 0 keeps its world position and the affine only has its
// columns scaled by `step` (resampled_affine). The output has round(n / step) voxels (at least 1); coordinates past
// the last input voxel take its value (border clamping), as they do in nnU-Net's and ITK's resamplers.
#pragma once
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <utility>

namespace spvit::data {

enum class Interpolation { linear, nearest };

struct ResampleGrid {
  std::array<int64_t, 3> in_shape{};   // tensor order: slowest axis first (k, j, i)
  std::array<int64_t, 3> out_shape{};
  std::array<double, 3> step{1, 1, 1};  // input voxels per output voxel

  // From voxel spacing `in_spacing` to `out_spacing` (mm, same axis order as the shapes).
  static ResampleGrid between(const std::array<int64_t, 3>& in_shape, const std::array<double, 3>& in_spacing,
                              const std::array<double, 3>& out_spacing);
  // The way back: the output grid's voxels onto this grid's input voxels (step 1 / step, shapes swapped).
  ResampleGrid inverse() const;
  bool identity() const { return in_shape == out_shape && step == std::array<double, 3>{1, 1, 1}; }
  // The input slices [first, last) along axis 0 that output slices [o0, o1) read (linear needs the next one too).
  std::pair<int64_t, int64_t> input_slices(int64_t o0, int64_t o1) const;
};

// Output slices [o0, o1) of `grid` from `input` [..., n, in_shape[1], in_shape[2]] (any leading dimensions),
// which holds input slices [in0, in0 + n) and must cover grid.input_slices(o0, o1). Linear works in float32
// (float64 input stays float64); nearest keeps the dtype (labels). Returns [..., o1 - o0, out_shape[1], out_shape[2]].
torch::Tensor resample_slab(const torch::Tensor& input, int64_t in0, const ResampleGrid& grid, int64_t o0, int64_t o1,
                            Interpolation mode);

// A whole volume [..., D, H, W] (resample_slab over every output slice).
torch::Tensor resample_volume(const torch::Tensor& input, const ResampleGrid& grid, Interpolation mode);

}  // namespace spvit::data

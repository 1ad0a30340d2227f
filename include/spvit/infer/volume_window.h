// Sliding-window inference over a 3D volume (spvit infer on NIfTI; docs/inference.md, "Volumes"), as nnU-Net runs
// it: cubic windows of the trained crop side S start every S · (1 - overlap) voxels along each axis (spread evenly
// so the last ends at the volume's edge; an axis shorter than S gets one window reaching past it, over zero padding,
// which is what the training crops' padding holds); each window's class probabilities are weighted by a Gaussian
// importance map (σ = S / 8, nnU-Net's) and summed, and the sum is divided by the summed weights.
//
// Memory is bounded by one slab of windows: the windows are run row by row along the first (slowest) axis, and an
// accumulator of S slices × the volume's plane holds only the current row. When a row is done, the slices no later
// window touches are finished — handed to the sink, in order — and dropped. The input is read the same way, one row's
// S slices at a time.
#pragma once
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace spvit::infer {

// The model: windows [B, C, S, S, S] float -> class probabilities [B, K, S, S, S] float32 on the CPU.
using VolumePredictor = std::function<torch::Tensor(const torch::Tensor& windows)>;
// Slices [z0, z1) of the (normalised) input volume, [C, z1 - z0, H, W] float32.
using VolumeSliceReader = std::function<torch::Tensor(int64_t z0, int64_t z1)>;
// Finished probability slices [K, n, H, W] float32 starting at slice z0, in order of z0, covering the volume once.
using VolumeSliceSink = std::function<void(int64_t z0, const torch::Tensor& probabilities)>;

struct VolumeWindowOptions {
  int64_t window = 64;     // S
  double overlap = 0.5;    // fraction of S shared by neighbouring windows, in [0, 1)
  int64_t batch = 2;       // windows per model call
  std::string blend = "gaussian";  // gaussian | constant (a plain mean of the overlapping windows)
  // Windows run so far / in all: called with 0 before the first, then after every batch.
  std::function<void(int64_t done, int64_t total)> progress;
};

// Window starts along an axis of n voxels (nnU-Net's: ceil((n - S) / step) + 1 starts, evenly spread; {0} when
// n <= S).
std::vector<int64_t> window_starts(int64_t n, int64_t window, double overlap);
// The blending weights of one window, [S, S, S] float32, > 0 everywhere (the Gaussian's smallest values are raised
// to its smallest non-zero one, as nnU-Net does, so no voxel is weighted 0).
torch::Tensor window_weights(int64_t window, const std::string& blend);

struct VolumeWindowStats {
  int64_t windows = 0;
  int64_t peak_accumulator_bytes = 0;  // the row accumulator's size (what bounds memory besides the model)
};

// Runs `predict` over a volume of `shape` {D, H, W} and `channels` channels read through `read`, with `classes`
// output classes, and streams the blended probabilities to `sink`.
VolumeWindowStats run_volume_windows(const std::array<int64_t, 3>& shape, int64_t channels, int64_t classes,
                                     const VolumeSliceReader& read, const VolumePredictor& predict,
                                     const VolumeWindowOptions& options, const VolumeSliceSink& sink);

}  // namespace spvit::infer

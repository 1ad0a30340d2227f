// NIfTI volumes at a target voxel spacing (data.spacing; docs/data.md, "Volumes"): the resampling grid of a file, the
// header a resampled volume gets (affine columns scaled, so voxel 0 keeps its world position and the orientation is
// unchanged), slabs of a file resampled on the fly (3D inference), and whole cases resampled once into
// data.cache_dir (training reads those like any other case: slab reads, statistics, checks).
#pragma once
#include <array>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "spvit/core/config.h"
#include "spvit/data/nifti_dataset.h"
#include "spvit/data/nifti_file.h"
#include "spvit/data/volume_resample.h"

namespace spvit::data {

// data.spacing as mm per voxel along i, j, k (the NIfTI pixdim order `spvit data check` prints), or nullopt when
// unset. ConfigError unless it is 3 positive numbers.
std::optional<std::array<double, 3>> target_spacing(const DataConfig& data);

// The grid from a file's voxels to `spacing` (i, j, k mm), in tensor order (k, j, i).
ResampleGrid resample_grid(const NiftiHeader& header, const std::array<double, 3>& spacing);
// True when the file already has `spacing` (within 0.1 %): no resampling.
bool has_spacing(const NiftiHeader& header, const std::array<double, 3>& spacing);
// The header of the resampled volume: shape (channels dropped), spacing, affine columns scaled by the grid's steps.
NiftiHeader resampled_header(const NiftiHeader& header, const ResampleGrid& grid);

// Output slices [o0, o1) of channel `channel` of the file at `path`, resampled on `grid`: [o1 - o0, H', W'] float32.
// Reads only the input slab those slices need (grid.input_slices).
torch::Tensor read_resampled_slab(const std::string& path, int64_t channel, const ResampleGrid& grid, int64_t o0,
                                  int64_t o1, Interpolation mode);

// The case with every channel (linear) and its label (nearest) resampled to `spacing`, written once as .nii files
// (one per channel) under <cache_dir>/nifti/resampled-<key>/ and reused while the source files are unchanged; the
// case itself when it already has that spacing. Memory: one resampled channel of the case while it is written.
// DataError naming the case when a file cannot be read; a cache that cannot be written is a WriteError.
NiftiCase resampled_case(const NiftiCase& c, const NiftiDatasetInfo& info, const std::array<double, 3>& spacing,
                         const std::string& cache_dir);

}  // namespace spvit::data

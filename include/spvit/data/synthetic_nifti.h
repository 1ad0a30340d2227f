// Synthetic NIfTI datasets (spvit synth --format nifti, and the tests): the MRI-like generator's volumes written as
// an nnU-Net v2 or Medical Segmentation Decathlon dataset folder, with anisotropic spacing and a scanner-like affine.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "spvit/data/nifti_file.h"

namespace spvit::data {

struct SyntheticNiftiOptions {
  std::string layout = "nnunet";             // nnunet (v2: a file per channel) or msd (one 4-D file per case)
  std::vector<int64_t> shape{64, 64, 64};    // D, H, W (k, j, i) voxels
  int64_t count = 8;                         // cases
  int64_t held_out = 0;                      // the last cases go to imagesTs/ + labelsTs/ (not training cases)
  int64_t channels = 1;                      // 1: FLAIR-like; 2: also T1-like
  std::array<double, 3> spacing{0.9, 0.9, 2.5};  // mm along i, j, k
  uint64_t seed = 0;
  std::string extension = ".nii.gz";         // or .nii
  double lesion_scale = 1.0;                 // tumour radii multiplier (SyntheticOptions::lesion_scale)
};

// A scanner-like voxel-to-world matrix: LPS-flipped in-plane axes (as DICOM converters write), a 7° turn about the
// slice axis and an origin off the centre, with `spacing` mm per voxel.
NiftiHeader scanner_geometry(const std::array<double, 3>& spacing);

// Writes <dir>/dataset.json, imagesTr/, labelsTr/ (and imagesTs/, labelsTs/ for held-out cases). Channel 0 is the
// generator's FLAIR-like image, channel 1 a T1-like contrast (tissue bright, edema dark, the tumour core bright).
// Labels: 0 background, 1 head, 2 edema, 3 tumour core. ConfigError for bad options.
void write_synthetic_nifti(const std::string& dir, const SyntheticNiftiOptions& options);

}  // namespace spvit::data

// Synthetic datasets that need no files: pathology-like 2D RGB images and MRI-like 3D volumes, with masks.
//
// Both are procedural: every pixel is a function of (seed, sample index, absolute position), evaluated from
// hash-based value noise and objects placed per grid cell from a hash of (seed, index, cell). A region is therefore
// generated on its own, at a cost proportional to its size: a 1024² region of a 65536² sample is as cheap as a
// 1024² sample, and equals the same crop of the full sample bit for bit.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "spvit/data/dataset.h"

namespace spvit::data {

struct SyntheticOptions {
  int spatial_dims = 2;
  std::vector<int64_t> shape = {256, 256};  // spatial shape of every sample: (H, W) or (D, H, W)
  int64_t count = 16;
  uint64_t seed = 0;
  // Pathology: the side that sets the feature sizes (tissue blobs, glands); 0 = the sample's longer side. Whole
  // slides fix it (spvit synth --format slides), so their glands have one physical size whatever the slide's size.
  int64_t feature_scale = 0;
  // MRI: tumour radii multiplier (1: core 8-16 % of the head's smallest semi-axis, whole tumour ~0.2-4 % of the head;
  // 2: ~2-35 %, nearer BraTS' typical whole-tumour fractions).
  double lesion_scale = 1.0;
};

// Pathology-like H&E tiles: 2D, 3 channels (RGB), 4 classes:
//   0 background (glass), 1 tissue/stroma, 2 nuclei (small dark purple blobs), 3 gland (epithelial ring + lumen).
// Stain colours vary per sample (H&E optical densities jittered) and slowly across the image.
std::shared_ptr<Dataset> make_synthetic_pathology(const SyntheticOptions& options);

// MRI-like volumes: 3D, 1 channel, 4 classes:
//   0 background, 1 head/brain, 2 edema, 3 tumour core (an irregular core inside an edema shell).
std::shared_ptr<Dataset> make_synthetic_mri(const SyntheticOptions& options);

// Class names of the synthetic datasets, index = class id.
std::vector<std::string> synthetic_pathology_classes();
std::vector<std::string> synthetic_mri_classes();

}  // namespace spvit::data

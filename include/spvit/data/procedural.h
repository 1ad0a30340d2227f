// Building blocks of the synthetic datasets: hash-based value noise evaluated row by row over any region, and a
// Dataset whose samples are rendered on demand by a function of (index, region).
//
// Every value is a function of the absolute pixel position only (lattice values come from a hash, weights from the
// coordinate), computed with the same scalar float operations whatever the region, so a region is bit-identical to
// the same crop of the full sample.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "spvit/data/dataset.h"
#include "spvit/data/hash.h"

namespace spvit::data {

// Smooth value noise in [0, 1] on a lattice with spacing `cell` pixels, in 2 or 3 dimensions. One evaluator serves
// one thread (it holds scratch space for a lattice row).
class ValueNoise {
 public:
  // `x_begin`/`x_end`: the columns that row() will fill.
  ValueNoise(uint64_t key, double cell, int dims, int64_t x_begin, int64_t x_end);
  // Noise at columns [x_begin, x_end) of row y (2D; z ignored) or of row (z, y) (3D).
  void row(int64_t z, int64_t y, float* out);
  // Noise at a single point (same formula; for per-object decisions).
  static float at(uint64_t key, double cell, int dims, double z, double y, double x);

 private:
  struct Axis {
    int64_t i0;
    float w;
  };
  static Axis axis(double p, double cell);
  static float lattice(uint64_t key, int64_t iz, int64_t iy, int64_t ix);

  uint64_t key_;
  double cell_;
  int dims_;
  int64_t x_begin_, lattice_lo_;
  std::vector<Axis> x_axis_;
  std::vector<float> lattice_row_;
};

// A dataset of `count` samples of one spatial shape, rendered by `render(index, region, image, mask)`, which fills
// image [extents..., C] float32 and mask [extents...] int64 for the given region of sample `index`.
struct SyntheticOptions;
// Checks the options of a synthetic generator: `dims` spatial dimensions, a positive shape, count >= 1.
// `name` ("synthetic MRI") and `what` ("volumes are 3-D") go into the ConfigError messages.
void check_synthetic_options(const SyntheticOptions& options, int dims, const char* name, const char* what);

class ProceduralDataset : public Dataset {
 public:
  using Render = std::function<void(int64_t index, const Region& region, torch::Tensor& image, torch::Tensor& mask)>;
  ProceduralDataset(std::string name, std::vector<int64_t> shape, int64_t count, int64_t channels,
                    int64_t num_classes, Render render);
  int64_t size() const override { return count_; }
  int spatial_dims() const override { return static_cast<int>(shape_.size()); }
  int64_t channels() const override { return channels_; }
  int64_t num_classes() const override { return num_classes_; }
  std::vector<int64_t> spatial_shape(int64_t index) const override;
  Sample read(int64_t index, const std::optional<Region>& region = std::nullopt) const override;
  std::string describe() const override;

 private:
  std::string name_;
  std::vector<int64_t> shape_;
  int64_t count_, channels_, num_classes_;
  Render render_;
};

inline float smoothstep01(float t) { return t <= 0.f ? 0.f : t >= 1.f ? 1.f : t * t * (3.f - 2.f * t); }

}  // namespace spvit::data

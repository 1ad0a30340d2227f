// Value noise and the render-on-demand dataset behind the synthetic generators.
#include "spvit/data/procedural.h"

#include <iomanip>
#include <sstream>

#include "spvit/core/error.h"
#include "spvit/data/synthetic.h"

namespace spvit::data {

namespace {
inline float lerp(float a, float b, float w) { return a + (b - a) * w; }
}  // namespace

ValueNoise::Axis ValueNoise::axis(double p, double cell) {
  const double t = (p + 0.5) / cell;
  const double i0 = std::floor(t);
  return Axis{static_cast<int64_t>(i0), smoothstep01(static_cast<float>(t - i0))};
}

float ValueNoise::lattice(uint64_t key, int64_t iz, int64_t iy, int64_t ix) {
  const uint64_t h = mix64(mix64(mix64(key ^ static_cast<uint64_t>(iz)) ^ static_cast<uint64_t>(iy)) ^
                           static_cast<uint64_t>(ix));
  return static_cast<float>(unit(h));
}

ValueNoise::ValueNoise(uint64_t key, double cell, int dims, int64_t x_begin, int64_t x_end)
    : key_(key), cell_(cell), dims_(dims), x_begin_(x_begin) {
  SPVIT_CHECK(cell > 0 && (dims == 2 || dims == 3) && x_end > x_begin, "ValueNoise: bad cell ", cell, ", dims ", dims,
              " or columns [", x_begin, ", ", x_end, ")");
  x_axis_.reserve(static_cast<size_t>(x_end - x_begin));
  for (int64_t x = x_begin; x < x_end; ++x) x_axis_.push_back(axis(static_cast<double>(x), cell));
  lattice_lo_ = x_axis_.front().i0;
  for (auto& a : x_axis_) a.i0 -= lattice_lo_;  // index into lattice_row_
  lattice_row_.resize(static_cast<size_t>(x_axis_.back().i0 + 2));
}

void ValueNoise::row(int64_t z, int64_t y, float* out) {
  const Axis ay = axis(static_cast<double>(y), cell_);
  const int64_t n = static_cast<int64_t>(lattice_row_.size());
  if (dims_ == 2) {
    for (int64_t j = 0; j < n; ++j) {
      const int64_t ix = lattice_lo_ + j;
      lattice_row_[j] = lerp(lattice(key_, 0, ay.i0, ix), lattice(key_, 0, ay.i0 + 1, ix), ay.w);
    }
  } else {
    const Axis az = axis(static_cast<double>(z), cell_);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t ix = lattice_lo_ + j;
      const float y0 = lerp(lattice(key_, az.i0, ay.i0, ix), lattice(key_, az.i0 + 1, ay.i0, ix), az.w);
      const float y1 = lerp(lattice(key_, az.i0, ay.i0 + 1, ix), lattice(key_, az.i0 + 1, ay.i0 + 1, ix), az.w);
      lattice_row_[j] = lerp(y0, y1, ay.w);
    }
  }
  const float* lr = lattice_row_.data();
  const size_t width = x_axis_.size();
  for (size_t x = 0; x < width; ++x) {
    const Axis& a = x_axis_[x];
    out[x] = lerp(lr[a.i0], lr[a.i0 + 1], a.w);
  }
}

float ValueNoise::at(uint64_t key, double cell, int dims, double z, double y, double x) {
  const Axis ax = axis(x, cell), ay = axis(y, cell);
  auto column = [&](int64_t ix) {
    if (dims == 2) return lerp(lattice(key, 0, ay.i0, ix), lattice(key, 0, ay.i0 + 1, ix), ay.w);
    const Axis az = axis(z, cell);
    const float y0 = lerp(lattice(key, az.i0, ay.i0, ix), lattice(key, az.i0 + 1, ay.i0, ix), az.w);
    const float y1 = lerp(lattice(key, az.i0, ay.i0 + 1, ix), lattice(key, az.i0 + 1, ay.i0 + 1, ix), az.w);
    return lerp(y0, y1, ay.w);
  };
  return lerp(column(ax.i0), column(ax.i0 + 1), ax.w);
}

ProceduralDataset::ProceduralDataset(std::string name, std::vector<int64_t> shape, int64_t count, int64_t channels,
                                     int64_t num_classes, Render render)
    : name_(std::move(name)), shape_(std::move(shape)), count_(count), channels_(channels),
      num_classes_(num_classes), render_(std::move(render)) {}

std::vector<int64_t> ProceduralDataset::spatial_shape(int64_t index) const {
  check_index(*this, index);
  return shape_;
}

Sample ProceduralDataset::read(int64_t index, const std::optional<Region>& region) const {
  check_index(*this, index);
  Sample s;
  s.full_shape = shape_;
  s.region = region ? *region : full_region(shape_);
  check_region(s.region, shape_, describe() + ", sample " + std::to_string(index));
  auto extents = s.region.extents();
  s.mask = empty_buffer(extents, torch::kLong);
  extents.push_back(channels_);
  s.image = empty_buffer(extents, torch::kFloat32);
  std::ostringstream id;
  id << name_ << "-" << std::setw(6) << std::setfill('0') << index;
  s.id = id.str();
  render_(index, s.region, s.image, s.mask);
  return s;
}

std::string ProceduralDataset::describe() const {
  return "synthetic " + name_ + " (" + std::to_string(count_) + " x " + shape_string(shape_) + ")";
}

void check_synthetic_options(const SyntheticOptions& options, int dims, const char* name, const char* what) {
  if (options.spatial_dims != dims || static_cast<int>(options.shape.size()) != dims) {
    SPVIT_THROW(ConfigError, name, " ", what, ": spatial_dims must be ", dims, " and shape ",
                dims == 2 ? "(H, W)" : "(D, H, W)", ", got ", options.spatial_dims, " and ",
                shape_string(options.shape));
  }
  for (int64_t s : options.shape) {
    if (s < 1) SPVIT_THROW(ConfigError, name, ": shape ", shape_string(options.shape), " must be positive");
  }
  if (options.count < 1) SPVIT_THROW(ConfigError, name, ": count must be >= 1, got ", options.count);
}

}  // namespace spvit::data

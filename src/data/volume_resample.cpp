// Separable resampling of volumes (volume_resample.h): one axis at a time, each a gather of the two neighbouring
// input slices and a lerp (linear) or a gather of the nearest one. Trilinear interpolation is exactly this product
// of three 1-D interpolations.
#include "spvit/data/volume_resample.h"

#include <algorithm>
#include <cmath>

#include "spvit/core/error.h"

namespace spvit::data {
namespace {

// Input coordinate of output index o, clamped to the input's voxels.
double source_coordinate(int64_t o, double step, int64_t n_in) {
  return std::clamp(static_cast<double>(o) * step, 0.0, static_cast<double>(n_in - 1));
}

// Resamples dimension `dim` of `t` (which holds input indices [in0, in0 + t.size(dim))) to output indices [o0, o1).
torch::Tensor resample_axis(const torch::Tensor& t, int64_t dim, int64_t in0, int64_t n_in, double step, int64_t o0,
                            int64_t o1, Interpolation mode) {
  const int64_t held = t.size(dim);
  std::vector<int64_t> lo, hi;
  std::vector<double> w;
  for (int64_t o = o0; o < o1; ++o) {
    const double p = source_coordinate(o, step, n_in);
    const auto first = static_cast<int64_t>(std::floor(p));
    if (mode == Interpolation::nearest) {
      lo.push_back(std::min(n_in - 1, static_cast<int64_t>(std::floor(p + 0.5))) - in0);
    } else {
      lo.push_back(first - in0);
      hi.push_back(std::min(first + 1, n_in - 1) - in0);
      w.push_back(p - static_cast<double>(first));
    }
  }
  const auto in_range = [&](const std::vector<int64_t>& v) {
    return std::all_of(v.begin(), v.end(), [&](int64_t i) { return i >= 0 && i < held; });
  };
  SPVIT_CHECK(in_range(lo) && in_range(hi), "resample_slab: the input slices held do not cover the output slices ", o0,
              "..", o1);
  const auto index = [](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); };
  if (mode == Interpolation::nearest) return t.index_select(dim, index(lo));
  std::vector<int64_t> shape(static_cast<size_t>(t.dim()), 1);
  shape[static_cast<size_t>(dim)] = o1 - o0;
  const auto weight = torch::tensor(w, torch::kFloat64).to(t.scalar_type()).reshape(shape);
  const auto a = t.index_select(dim, index(lo)), b = t.index_select(dim, index(hi));
  return a + (b - a) * weight;
}

}  // namespace

ResampleGrid ResampleGrid::between(const std::array<int64_t, 3>& in_shape, const std::array<double, 3>& in_spacing,
                                   const std::array<double, 3>& out_spacing) {
  ResampleGrid g;
  g.in_shape = in_shape;
  for (int d = 0; d < 3; ++d) {
    SPVIT_CHECK(in_spacing[d] > 0 && out_spacing[d] > 0 && in_shape[d] > 0, "resampling needs positive spacings and "
                "shapes");
    g.step[d] = out_spacing[d] / in_spacing[d];
    g.out_shape[d] = std::max<int64_t>(1, std::llround(static_cast<double>(in_shape[d]) / g.step[d]));
  }
  return g;
}

ResampleGrid ResampleGrid::inverse() const {
  ResampleGrid g;
  g.in_shape = out_shape;
  g.out_shape = in_shape;
  for (int d = 0; d < 3; ++d) g.step[d] = 1.0 / step[d];
  return g;
}

std::pair<int64_t, int64_t> ResampleGrid::input_slices(int64_t o0, int64_t o1) const {
  SPVIT_CHECK(0 <= o0 && o0 < o1 && o1 <= out_shape[0], "output slices ", o0, "..", o1, " outside 0..", out_shape[0]);
  const int64_t first = static_cast<int64_t>(std::floor(source_coordinate(o0, step[0], in_shape[0])));
  const int64_t last = static_cast<int64_t>(std::floor(source_coordinate(o1 - 1, step[0], in_shape[0])));
  // +1 for the upper neighbour of linear interpolation, +1 for the half-open end; nearest may round up.
  return {first, std::min(in_shape[0], last + 2)};
}

torch::Tensor resample_slab(const torch::Tensor& input, int64_t in0, const ResampleGrid& grid, int64_t o0, int64_t o1,
                            Interpolation mode) {
  SPVIT_CHECK(input.dim() >= 3, "resample_slab needs [..., D, H, W], got ", input.dim(), " dimensions");
  const int64_t n = input.dim();
  SPVIT_CHECK(input.size(n - 2) == grid.in_shape[1] && input.size(n - 1) == grid.in_shape[2],
              "resample_slab: input planes ", input.size(n - 2), "x", input.size(n - 1), " differ from the grid's ",
              grid.in_shape[1], "x", grid.in_shape[2]);
  auto t = input;
  if (mode == Interpolation::linear && t.scalar_type() != torch::kFloat64) t = t.to(torch::kFloat32);
  // The largest reduction first keeps the intermediate small: slices, then rows, then columns.
  t = resample_axis(t, n - 3, in0, grid.in_shape[0], grid.step[0], o0, o1, mode);
  t = resample_axis(t, n - 2, 0, grid.in_shape[1], grid.step[1], 0, grid.out_shape[1], mode);
  t = resample_axis(t, n - 1, 0, grid.in_shape[2], grid.step[2], 0, grid.out_shape[2], mode);
  return t.contiguous();
}

torch::Tensor resample_volume(const torch::Tensor& input, const ResampleGrid& grid, Interpolation mode) {
  SPVIT_CHECK(input.dim() >= 3 && input.size(input.dim() - 3) == grid.in_shape[0], "resample_volume: the input has ",
              input.dim() >= 3 ? input.size(input.dim() - 3) : 0, " slices, the grid ", grid.in_shape[0]);
  return resample_slab(input, 0, grid, 0, grid.out_shape[0], mode);
}

}  // namespace spvit::data

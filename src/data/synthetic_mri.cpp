// Synthetic MRI-like (FLAIR-like) head volumes with a tumour, rendered region by region.
//
// Model (voxel coordinates (z, y, x) of the full volume):
//   head     an ellipsoid (semi-axes 0.40-0.46 of each side) around a slightly jittered centre; its outer 10 % is
//            scalp/skull, the rest brain with a 4-voxel texture; two dark ventricles near the centre;
//   tumour   a core of radius 8-16 % of the smallest head semi-axis (× lesion_scale), inside an edema shell 1.6-2.2×
//            wider, both with
//            borders roughened by value noise; a dark necrotic centre inside the core; labels only inside the brain;
//   signal   multiplied by a smooth bias field (cells of half the volume) and a per-sample gain, plus voxel grain.
// Labels: 0 background, 1 head/brain, 2 edema, 3 tumour core.
#include <ATen/Parallel.h>

#include <array>
#include <cmath>

#include "spvit/core/error.h"
#include "spvit/data/procedural.h"
#include "spvit/data/synthetic.h"

namespace spvit::data {

namespace {

struct Mri {
  uint64_t key = 0;
  std::array<double, 3> centre{}, axes{};            // head ellipsoid
  std::array<double, 3> tumour{};                    // tumour centre
  double core = 1, edema = 2;                        // radii in voxels
  std::array<std::array<double, 3>, 2> ventricle{};  // centres
  std::array<double, 3> ventricle_axes{};
  double bias_cell = 32, gain = 1;
};

Mri make_mri_params(uint64_t seed, int64_t index, const std::vector<int64_t>& shape, double lesion_scale) {
  Mri m;
  m.key = hash_key({seed, static_cast<uint64_t>(index), 0x3b1u});
  HashStream s(m.key);
  double min_axis = 1e30;
  for (int d = 0; d < 3; ++d) {
    const double n = static_cast<double>(shape[d]);
    m.centre[d] = n * 0.5 * s.uniform(0.96, 1.04);
    m.axes[d] = n * s.uniform(0.40, 0.46);
    min_axis = std::min(min_axis, m.axes[d]);
  }
  // Tumour centre: a random direction at 15-45 % of the head radius (normalised coordinates), so it sits in brain.
  std::array<double, 3> dir{};
  double norm = 0;
  while (norm < 1e-3) {
    for (int d = 0; d < 3; ++d) dir[d] = s.uniform(-1, 1);
    norm = std::sqrt(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
  }
  const double radius = s.uniform(0.15, 0.45);
  for (int d = 0; d < 3; ++d) m.tumour[d] = m.centre[d] + m.axes[d] * radius * dir[d] / norm;
  m.core = std::max(1.5, min_axis * s.uniform(0.08, 0.16) * lesion_scale);
  m.edema = m.core * s.uniform(1.6, 2.2);
  for (int side = 0; side < 2; ++side) {
    m.ventricle[side] = m.centre;
    m.ventricle[side][2] += (side ? 1 : -1) * 0.12 * m.axes[2];
  }
  m.ventricle_axes = {0.18 * m.axes[0], 0.25 * m.axes[1], 0.07 * m.axes[2]};
  m.bias_cell = std::max(4.0, 0.5 * static_cast<double>(std::max({shape[0], shape[1], shape[2]})));
  m.gain = s.uniform(0.9, 1.1);
  return m;
}

// Renders slices [z0, z1) (absolute) of `region`; `image`/`mask` point at slice z0 of the region's buffers.
void render_slices(const Mri& m, const std::vector<int64_t>& shape, const Region& region, int64_t z0, int64_t z1,
                   float* image, int64_t* mask) {
  const int64_t y0 = region.begin[1], y1 = region.end[1], x0 = region.begin[2], x1 = region.end[2];
  const int64_t w = x1 - x0;
  ValueNoise texture(m.key + 1, 4, 3, x0, x1), bias(m.key + 2, m.bias_cell, 3, x0, x1),
      rough(m.key + 3, std::max(2.0, 0.8 * m.core), 3, x0, x1);
  std::vector<float> tex(w), bf(w), rg(w);
  int64_t o = 0;
  for (int64_t z = z0; z < z1; ++z) {
    for (int64_t y = y0; y < y1; ++y) {
      texture.row(z, y, tex.data());
      bias.row(z, y, bf.data());
      rough.row(z, y, rg.data());
      const double pz = (z + 0.5 - m.centre[0]) / m.axes[0], py = (y + 0.5 - m.centre[1]) / m.axes[1];
      const double tz = z + 0.5 - m.tumour[0], ty = y + 0.5 - m.tumour[1];
      for (int64_t i = 0; i < w; ++i, ++o) {
        const int64_t x = x0 + i;
        const double px = (x + 0.5 - m.centre[2]) / m.axes[2];
        const double rho = std::sqrt(pz * pz + py * py + px * px);
        float v;
        int64_t label;
        if (rho >= 1.0) {
          v = 0.03f;
          label = 0;
        } else if (rho >= 0.9) {
          v = 0.30f + 0.10f * tex[i];
          label = 1;
        } else {
          v = 0.42f + 0.16f * (tex[i] - 0.5f);
          label = 1;
          for (const auto& c : m.ventricle) {
            const double a = (z + 0.5 - c[0]) / m.ventricle_axes[0], b = (y + 0.5 - c[1]) / m.ventricle_axes[1],
                         d = (x + 0.5 - c[2]) / m.ventricle_axes[2];
            if (a * a + b * b + d * d < 1.0) v = 0.12f;
          }
          const double tx = x + 0.5 - m.tumour[2];
          const double dist = std::sqrt(tz * tz + ty * ty + tx * tx) / (1.0 + 0.4 * (rg[i] - 0.5));
          if (dist < m.core) {
            label = 3;
            v = dist < 0.45 * m.core ? 0.55f : 0.92f;
          } else if (dist < m.edema) {
            label = 2;
            v = 0.70f + 0.08f * tex[i];
          }
        }
        const uint64_t voxel = static_cast<uint64_t>((z * shape[1] + y) * shape[2] + x);
        const float grain = static_cast<float>(unit(mix64(m.key ^ mix64(voxel)))) - 0.5f;
        image[o] = v * static_cast<float>(m.gain) * (0.85f + 0.3f * bf[i]) + 0.03f * grain;
        mask[o] = label;
      }
    }
  }
}

void render_mri(uint64_t seed, double lesion_scale, const std::vector<int64_t>& shape, int64_t index,
                const Region& region, torch::Tensor& image, torch::Tensor& mask) {
  const Mri m = make_mri_params(seed, index, shape, lesion_scale);
  const int64_t slice = region.extent(1) * region.extent(2);
  float* img = image.data_ptr<float>();
  int64_t* msk = mask.data_ptr<int64_t>();
  at::parallel_for(0, region.extent(0), 1, [&](int64_t a, int64_t b) {
    render_slices(m, shape, region, region.begin[0] + a, region.begin[0] + b, img + a * slice, msk + a * slice);
  });
}

}  // namespace

std::vector<std::string> synthetic_mri_classes() { return {"background", "head", "edema", "tumour core"}; }

std::shared_ptr<Dataset> make_synthetic_mri(const SyntheticOptions& options) {
  check_synthetic_options(options, 3, "synthetic MRI", "volumes are 3-D");
  SPVIT_CHECK(options.lesion_scale > 0 && options.lesion_scale <= 4, "synthetic MRI lesion scale must be in (0, 4], got ",
              options.lesion_scale);
  const uint64_t seed = options.seed;
  const double lesion_scale = options.lesion_scale;
  const std::vector<int64_t> shape = options.shape;
  return std::make_shared<ProceduralDataset>(
      "mri", shape, options.count, 1, 4,
      [seed, lesion_scale, shape](int64_t index, const Region& region, torch::Tensor& image, torch::Tensor& mask) {
        render_mri(seed, lesion_scale, shape, index, region, image, mask);
      });
}

}  // namespace spvit::data

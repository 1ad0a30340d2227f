// Synthetic H&E pathology tiles of any size, rendered region by region.
//
// Model (all sizes in pixels of the full sample, L = its longer side):
//   tissue   three octaves of value noise with cells L/3, L/6, L/12 (at least 48, 24, 12), thresholded;
//   stroma   eosin density modulated by fine fibre noise (5 px) and patchy heterogeneity (23 px);
//   glands   one candidate per G×G cell (G = clamp(L/4, 48, 192)): an elliptical ring of epithelium around a pale
//            lumen, kept when its centre lies in tissue;
//   nuclei   one candidate per 14×14 cell: a small dark ellipse (radius 2.5-5.5 px), kept in tissue, never in a lumen;
//   colour   Beer-Lambert with per-sample jittered H&E optical densities: rgb = light · exp(-(h·H + e·E)).
// Labels: 0 background, 1 tissue/stroma, 2 nuclei, 3 gland (ring and lumen); later objects overwrite earlier ones.
// Rendering goes in bands of rows (in parallel); each band visits the objects whose cells can reach it, in a fixed
// cell order, so any region equals the crop of the full sample exactly.
#include <ATen/Parallel.h>

#include <array>
#include <cmath>
#include <memory>

#include "spvit/core/error.h"
#include "spvit/data/procedural.h"
#include "spvit/data/synthetic.h"

namespace spvit::data {

namespace {

constexpr float kTissueThreshold = 0.47f;
constexpr double kNucleusCell = 14.0;
constexpr double kPi = 3.14159265358979323846;

struct Pathology {
  uint64_t key = 0;
  double tissue_cell[3] = {48, 24, 12};
  double gland_cell = 64;
  std::array<float, 3> H{}, E{}, light{};
  float hs = 1, es = 1;  // stain intensities

  float tissue_at(double y, double x) const {
    float v = 0, weight = 1;
    for (int k = 0; k < 3; ++k, weight *= 0.5f) v += weight * ValueNoise::at(key + 11 + k, tissue_cell[k], 2, 0, y, x);
    return v / 1.75f;
  }
};

Pathology make_pathology_params(uint64_t seed, int64_t index, const std::vector<int64_t>& shape) {
  Pathology p;
  p.key = hash_key({seed, static_cast<uint64_t>(index), 0x9a7401u});
  const double L = static_cast<double>(std::max(shape[0], shape[1]));
  for (int k = 0; k < 3; ++k) p.tissue_cell[k] = std::max(48.0 / (1 << k), L / (3.0 * (1 << k)));
  p.gland_cell = std::round(std::clamp(L / 4.0, 48.0, 192.0));
  HashStream s(p.key);
  const float H0[3] = {0.65f, 0.70f, 0.29f}, E0[3] = {0.07f, 0.99f, 0.11f};  // Ruifrok & Johnston's H&E vectors
  for (int c = 0; c < 3; ++c) {
    p.H[c] = H0[c] * static_cast<float>(s.uniform(0.85, 1.15));
    p.E[c] = E0[c] * static_cast<float>(s.uniform(0.85, 1.15));
    p.light[c] = static_cast<float>(s.uniform(0.93, 0.99));
  }
  p.hs = static_cast<float>(s.uniform(0.8, 1.2));
  p.es = static_cast<float>(s.uniform(0.7, 1.3));
  return p;
}

struct Ellipse {
  bool present = false;
  double cy = 0, cx = 0, r = 1, q = 1, cos_t = 1, sin_t = 0, inner = 0;  // inner: lumen radius / r (glands)
  double extent() const { return r; }
  double rho2(double y, double x) const {  // (normalised radius)² of the pixel centre (y, x)
    const double dy = y - cy, dx = x - cx;
    const double u = dx * cos_t + dy * sin_t, v = -dx * sin_t + dy * cos_t;
    return (u * u) / (r * r) + (v * v) / (q * q * r * r);
  }
};

Ellipse gland_at(const Pathology& p, int64_t gy, int64_t gx) {
  HashStream s(hash_key({p.key, 1, static_cast<uint64_t>(gy), static_cast<uint64_t>(gx)}));
  Ellipse g;
  const double G = p.gland_cell;
  if (!s.bernoulli(0.45)) return g;
  g.cy = (static_cast<double>(gy) + s.uniform(0.2, 0.8)) * G;
  g.cx = (static_cast<double>(gx) + s.uniform(0.2, 0.8)) * G;
  g.r = G * s.uniform(0.22, 0.38);
  g.q = s.uniform(0.7, 1.0);
  const double t = s.uniform(0.0, kPi);
  g.cos_t = std::cos(t);
  g.sin_t = std::sin(t);
  g.inner = s.uniform(0.55, 0.7);
  g.present = p.tissue_at(g.cy, g.cx) > kTissueThreshold + 0.03f;
  return g;
}

Ellipse nucleus_at(const Pathology& p, int64_t ny, int64_t nx) {
  HashStream s(hash_key({p.key, 2, static_cast<uint64_t>(ny), static_cast<uint64_t>(nx)}));
  Ellipse n;
  if (!s.bernoulli(0.4)) return n;
  n.cy = (static_cast<double>(ny) + s.uniform(0.15, 0.85)) * kNucleusCell;
  n.cx = (static_cast<double>(nx) + s.uniform(0.15, 0.85)) * kNucleusCell;
  n.r = s.uniform(2.5, 5.5);
  n.q = s.uniform(0.65, 1.0);
  const double t = s.uniform(0.0, kPi);
  n.cos_t = std::cos(t);
  n.sin_t = std::sin(t);
  n.inner = s.uniform(1.0, 1.4);  // darkness
  n.present = p.tissue_at(n.cy, n.cx) > kTissueThreshold;
  return n;
}

int64_t floor_div(double v, double cell) { return static_cast<int64_t>(std::floor(v / cell)); }

// Renders rows [r0, r1) of `region` (absolute rows) into the band's slices of image and mask.
void render_band(const Pathology& p, const Region& region, int64_t r0, int64_t r1, float* image, int64_t* mask) {
  const int64_t c0 = region.begin[1], c1 = region.end[1], w = c1 - c0, rows = r1 - r0;
  // Stain densities of the band; every element is written by the base layer first (no zero-fill needed).
  std::unique_ptr<float[]> h_buffer(new float[static_cast<size_t>(rows * w)]), e_buffer(new float[static_cast<size_t>(rows * w)]);
  float* h = h_buffer.get();
  float* e = e_buffer.get();
  // Base layer: background or stroma.
  {
    ValueNoise t0(p.key + 11, p.tissue_cell[0], 2, c0, c1), t1(p.key + 12, p.tissue_cell[1], 2, c0, c1),
        t2(p.key + 13, p.tissue_cell[2], 2, c0, c1), stain(p.key + 21, 512, 2, c0, c1), fibre(p.key + 22, 5, 2, c0, c1),
        patch(p.key + 23, 23, 2, c0, c1);
    std::vector<float> a(w), b(w), c(w), st(w), fb(w), pt(w);
    for (int64_t y = r0; y < r1; ++y) {
      t0.row(0, y, a.data());
      t1.row(0, y, b.data());
      t2.row(0, y, c.data());
      stain.row(0, y, st.data());
      fibre.row(0, y, fb.data());
      patch.row(0, y, pt.data());
      const int64_t o = (y - r0) * w;
      for (int64_t x = 0; x < w; ++x) {
        const float T = (a[x] + 0.5f * b[x] + 0.25f * c[x]) / 1.75f;
        const float alpha = std::clamp((T - kTissueThreshold) * 25.f, 0.f, 1.f);
        mask[o + x] = T > kTissueThreshold ? 1 : 0;
        e[o + x] = alpha * p.es * (0.8f + 0.4f * st[x]) * (0.3f + 0.5f * fb[x]) * (0.7f + 0.6f * pt[x]);
        h[o + x] = alpha * 0.12f * p.hs;
      }
    }
  }
  // Glands, cached for the cells this band's nuclei may need to test against (two cells of margin).
  const double G = p.gland_cell;
  const int64_t gy0 = floor_div(static_cast<double>(r0), G) - 2, gy1 = floor_div(static_cast<double>(r1 - 1), G) + 2;
  const int64_t gx0 = floor_div(static_cast<double>(c0), G) - 2, gx1 = floor_div(static_cast<double>(c1 - 1), G) + 2;
  const int64_t gw = gx1 - gx0 + 1;
  std::vector<Ellipse> glands(static_cast<size_t>((gy1 - gy0 + 1) * gw));
  for (int64_t gy = gy0; gy <= gy1; ++gy)
    for (int64_t gx = gx0; gx <= gx1; ++gx) glands[(gy - gy0) * gw + (gx - gx0)] = gland_at(p, gy, gx);

  // Visits the pixels of the band inside the ellipse's bounding box: fn(offset, rho2).
  auto raster = [&](const Ellipse& el, double pad, auto&& fn) {
    const double ext = el.extent() * pad;
    const int64_t ya = std::max(r0, static_cast<int64_t>(std::floor(el.cy - ext))),
                  yb = std::min(r1, static_cast<int64_t>(std::ceil(el.cy + ext)) + 1);
    const int64_t xa = std::max(c0, static_cast<int64_t>(std::floor(el.cx - ext))),
                  xb = std::min(c1, static_cast<int64_t>(std::ceil(el.cx + ext)) + 1);
    for (int64_t y = ya; y < yb; ++y)
      for (int64_t x = xa; x < xb; ++x) fn((y - r0) * w + (x - c0), el.rho2(y + 0.5, x + 0.5));
  };
  for (int64_t gy = gy0 + 1; gy < gy1; ++gy) {
    for (int64_t gx = gx0 + 1; gx < gx1; ++gx) {
      const Ellipse& g = glands[(gy - gy0) * gw + (gx - gx0)];
      if (!g.present) continue;
      const double inner2 = g.inner * g.inner;
      raster(g, 1.0, [&](int64_t o, double r2) {
        if (r2 >= 1.0) return;
        mask[o] = 3;
        if (r2 < inner2) {  // lumen: nearly empty
          h[o] *= 0.15f;
          e[o] *= 0.1f;
        } else {  // epithelium: cytoplasm-rich, bluish
          h[o] = std::max(h[o], 0.45f * p.hs);
          e[o] = 0.6f * e[o] + 0.15f * p.es;
        }
      });
    }
  }
  // Nuclei: any cell whose nucleus (radius <= 5.5, drawn to 1.25 radii) can reach the band.
  const int64_t ny0 = floor_div(static_cast<double>(r0) - 8, kNucleusCell), ny1 = floor_div(static_cast<double>(r1) + 8, kNucleusCell);
  const int64_t nx0 = floor_div(static_cast<double>(c0) - 8, kNucleusCell), nx1 = floor_div(static_cast<double>(c1) + 8, kNucleusCell);
  for (int64_t ny = ny0; ny <= ny1; ++ny) {
    for (int64_t nx = nx0; nx <= nx1; ++nx) {
      const Ellipse n = nucleus_at(p, ny, nx);
      if (!n.present) continue;
      bool in_lumen = false;
      const int64_t cy = floor_div(n.cy, G), cx = floor_div(n.cx, G);
      for (int64_t gy = cy - 1; gy <= cy + 1 && !in_lumen; ++gy)
        for (int64_t gx = cx - 1; gx <= cx + 1 && !in_lumen; ++gx) {
          const Ellipse& g = glands[(gy - gy0) * gw + (gx - gx0)];
          in_lumen = g.present && g.rho2(n.cy, n.cx) < g.inner * g.inner;
        }
      if (in_lumen) continue;
      const float dark = static_cast<float>(n.inner) * p.hs;
      raster(n, 1.25, [&](int64_t o, double r2) {
        if (r2 >= 1.5625) return;
        const float rho = static_cast<float>(std::sqrt(r2));
        const float f = std::clamp((1.25f - rho) * 4.f, 0.f, 1.f);  // soft edge between 1 and 1.25 radii
        h[o] = std::max(h[o], dark * f * (1.f - 0.25f * rho * rho));
        e[o] *= 1.f - 0.6f * f;
        if (r2 < 1.0) mask[o] = 2;
      });
    }
  }
  for (int64_t i = 0; i < rows * w; ++i) {
    for (int c = 0; c < 3; ++c) image[i * 3 + c] = p.light[c] * std::exp(-(h[i] * p.H[c] + e[i] * p.E[c]));
  }
}

void render_pathology(uint64_t seed, const std::vector<int64_t>& scale, int64_t index, const Region& region,
                      torch::Tensor& image, torch::Tensor& mask) {
  const Pathology p = make_pathology_params(seed, index, scale);
  const int64_t rows = region.extent(0), w = region.extent(1);
  constexpr int64_t kBand = 64;
  float* img = image.data_ptr<float>();
  int64_t* msk = mask.data_ptr<int64_t>();
  at::parallel_for(0, (rows + kBand - 1) / kBand, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t y0 = b * kBand, y1 = std::min(rows, y0 + kBand);
      render_band(p, region, region.begin[0] + y0, region.begin[0] + y1, img + y0 * w * 3, msk + y0 * w);
    }
  });
}

}  // namespace

std::vector<std::string> synthetic_pathology_classes() { return {"background", "tissue", "nuclei", "gland"}; }

std::shared_ptr<Dataset> make_synthetic_pathology(const SyntheticOptions& options) {
  check_synthetic_options(options, 2, "synthetic pathology", "images are 2-D");
  SPVIT_CHECK(options.feature_scale >= 0, "synthetic pathology: feature_scale must be >= 0");
  const uint64_t seed = options.seed;
  // The side that sets the feature sizes (the "L" above): the sample's own, or a fixed one.
  const std::vector<int64_t> scale = options.feature_scale > 0
                                         ? std::vector<int64_t>{options.feature_scale, options.feature_scale}
                                         : options.shape;
  return std::make_shared<ProceduralDataset>(
      "pathology", options.shape, options.count, 3, 4,
      [seed, scale](int64_t index, const Region& region, torch::Tensor& image, torch::Tensor& mask) {
        render_pathology(seed, scale, index, region, image, mask);
      });
}

}  // namespace spvit::data

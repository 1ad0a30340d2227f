// The torch-facing batched leaf extract/paste (include/spvit/kernels/patch_resample.h). The LibTorch-op version groups
// leaves by side; for each group it computes every leaf pixel's linear index into the pixel tensor (and whether it
// lies in the image and the tensor) by broadcasting, gathers or scatters them in one op, and resizes the whole group
// in one reshape-sum or interpolate call, as src/patch/extract.cpp does on its blocked canvas.
#include "spvit/kernels/patch_resample.h"

#include <map>

#include "dispatch.h"
#include "spvit/core/error.h"
#if SPVIT_HAVE_CUDA
#include "torch_cuda.h"
#endif

namespace spvit::kernels {
namespace {

namespace F = torch::nn::functional;

int64_t ipow(int64_t base, int d) {
  int64_t r = 1;
  for (int k = 0; k < d; ++k) r *= base;
  return r;
}

void check_power_of_two_ratio(int64_t side, int64_t patch) {
  const int64_t big = std::max(side, patch), small = std::min(side, patch);
  SPVIT_CHECK(big % small == 0 && ((big / small) & (big / small - 1)) == 0, "leaf side ", side,
              " and patch side P = ", patch, " must differ by a power of two");
}

// The geometry of a channels-last pixel tensor whose first pixel is at `origin` in an image of size `limit`.
LeafGeometry geometry_of(const torch::Tensor& pixels, const std::vector<int64_t>& origin,
                         const std::vector<int64_t>& limit, int64_t patch, const char* op) {
  const int d = static_cast<int>(origin.size());
  SPVIT_CHECK(d == 2 || d == 3, op, ": origin needs 2 or 3 coordinates, got ", d);
  SPVIT_CHECK(static_cast<int>(limit.size()) == d, op, ": the image extent needs ", d, " coordinates");
  SPVIT_CHECK(pixels.dim() == d + 1, op, ": a ", d, "-D pixel tensor must be [", d == 2 ? "H, W" : "D, H, W",
              ", C], got ", pixels.sizes());
  SPVIT_CHECK(patch >= 1, op, ": patch side P must be >= 1, got ", patch);
  LeafGeometry g;
  g.dims = d;
  g.patch = patch;
  g.channels = pixels.size(d);
  for (int a = 0; a < d; ++a) {
    g.origin[a] = origin[a];
    g.extent[a] = pixels.size(d - 1 - a);
    g.limit[a] = limit[a];
  }
  return g;
}

void check_leaves(const torch::Tensor& leaves, const char* op) {
  SPVIT_CHECK(leaves.defined() && leaves.dim() == 2 && leaves.size(1) == 4 && leaves.scalar_type() == torch::kLong,
              op, ": leaves must be an int64 [n, 4] tensor of (x, y, z, side), got ",
              leaves.defined() ? leaves.sizes() : c10::IntArrayRef{});
}

// Rows of `leaves` (on the CPU) grouped by side, empty slots (side 0) left out.
std::map<int64_t, std::vector<int64_t>> group_by_side(const torch::Tensor& leaves_cpu, int64_t patch) {
  std::map<int64_t, std::vector<int64_t>> groups;
  const auto a = leaves_cpu.accessor<int64_t, 2>();
  for (int64_t i = 0; i < leaves_cpu.size(0); ++i) {
    const int64_t side = a[i][3];
    SPVIT_CHECK(side >= 0, "leaf #", i, " has a negative side ", side);
    if (side == 0) continue;
    check_power_of_two_ratio(side, patch);
    groups[side].push_back(i);
  }
  return groups;
}

// For leaves [m, 4] of side s: the linear pixel index of every leaf pixel into the pixel tensor ([m, s, s(, s)], tensor
// dimension order; 0 where invalid) and whether the pixel lies in the image and in the tensor.
std::pair<torch::Tensor, torch::Tensor> leaf_pixel_index(const torch::Tensor& corners, int64_t s,
                                                         const LeafGeometry& g) {
  const int d = g.dims;
  const int64_t m = corners.size(0);
  std::vector<int64_t> full(static_cast<size_t>(d + 1), s);
  full[0] = m;
  std::vector<int64_t> shape(static_cast<size_t>(d + 1), 1);
  shape[0] = m;
  auto index = torch::zeros(shape, corners.options());  // grows to `full` by broadcasting
  auto valid = torch::ones(full, corners.options().dtype(torch::kBool));
  int64_t stride = 1;  // x is the fastest-varying coordinate of a channels-last tensor
  for (int a = 0; a < d; ++a) {
    const auto k = static_cast<size_t>(a);
    shape.assign(static_cast<size_t>(d + 1), 1);
    shape[0] = m;
    const auto start = corners.select(1, a).view(shape);
    shape[0] = 1;
    shape[static_cast<size_t>(d - a)] = s;  // tensor dimension of coordinate axis a
    const auto at = start + torch::arange(s, corners.options()).view(shape);  // image coordinate
    const auto local = at - g.origin[k];
    valid = valid & (at < g.limit[k]) & (local >= 0) & (local < g.extent[k]);
    index = index + local.clamp(0, g.extent[k] - 1) * stride;
    stride *= g.extent[k];
  }
  return {index.expand(full).contiguous(), valid};
}

// Mean over f-blocks of the spatial dimensions of a channels-last [m, n·f, n·f(, n·f), C] -> [m, n, n(, n), C], one
// axis at a time, innermost first (as patch::area_shrink).
torch::Tensor area_mean(const torch::Tensor& t, int d, int64_t f) {
  torch::Tensor out = t;
  for (int k = d - 1; k >= 0; --k) {
    auto shape = out.sizes().vec();
    shape[static_cast<size_t>(1 + k)] /= f;
    shape.insert(shape.begin() + 2 + k, f);
    out = out.reshape(shape).sum(2 + k);
  }
  return out.div_(static_cast<double>(ipow(f, d)));
}

// [m, a, b(, c), C] <-> [m, C, a, b(, c)]
torch::Tensor channels_first(const torch::Tensor& t, int d) {
  std::vector<int64_t> perm = {0, d + 1};
  for (int k = 0; k < d; ++k) perm.push_back(1 + k);
  return t.permute(perm);
}
torch::Tensor channels_last(const torch::Tensor& t, int d) {
  std::vector<int64_t> perm = {0};
  for (int k = 0; k < d; ++k) perm.push_back(2 + k);
  perm.push_back(1);
  return t.permute(perm);
}

torch::Tensor resize(const torch::Tensor& t, int d, int64_t size, bool nearest) {
  auto opts = F::InterpolateFuncOptions().size(std::vector<int64_t>(static_cast<size_t>(d), size));
  if (nearest) return F::interpolate(t, opts.mode(torch::kNearest));
  if (d == 2) return F::interpolate(t, opts.mode(torch::kBilinear).align_corners(false));
  return F::interpolate(t, opts.mode(torch::kTrilinear).align_corners(false));
}

torch::Tensor extract_ops(const torch::Tensor& pixels, const LeafGeometry& g, const torch::Tensor& leaves,
                          bool nearest, torch::ScalarType dtype) {
  const int d = g.dims;
  const int64_t P = g.patch, C = g.channels, tile = ipow(P, d);
  auto tokens = torch::zeros({leaves.size(0), C * tile}, pixels.options().dtype(dtype));
  const auto flat = pixels.reshape({-1, C});
  const auto leaves_cpu = leaves.to(torch::kCPU);
  for (const auto& [s, rows] : group_by_side(leaves_cpu, P)) {
    const auto idx = torch::tensor(rows, torch::kLong).to(pixels.device());
    const auto [index, valid] = leaf_pixel_index(leaves.index_select(0, idx), s, g);
    auto shape = index.sizes().vec();
    shape.push_back(C);
    auto t = flat.index_select(0, index.reshape(-1)).view(shape).to(dtype).masked_fill_(valid.unsqueeze(-1).logical_not(), 0);
    t = channels_first(s > P ? area_mean(t, d, s / P) : t, d);
    if (s < P) t = resize(t, d, P, nearest);
    tokens.index_copy_(0, idx, t.reshape({static_cast<int64_t>(rows.size()), C * tile}));
  }
  return tokens;
}

torch::Tensor paste_ops(const torch::Tensor& tokens, const torch::Tensor& leaves, const LeafGeometry& g,
                        torch::Tensor out) {
  const int d = g.dims;
  const int64_t P = g.patch, K = g.channels;
  const auto out_rows = out.view({-1, K});
  const auto leaves_cpu = leaves.to(torch::kCPU);
  std::vector<int64_t> tile_shape(static_cast<size_t>(d + 2), P);
  tile_shape[1] = K;
  for (const auto& [s, rows] : group_by_side(leaves_cpu, P)) {
    const auto idx = torch::tensor(rows, torch::kLong).to(tokens.device());
    tile_shape[0] = static_cast<int64_t>(rows.size());
    auto t = tokens.index_select(0, idx).view(tile_shape);  // [m, K, P, P(, P)]
    if (s > P) t = channels_last(resize(t, d, s, /*nearest=*/false), d);
    else t = channels_last(t, d);
    if (s < P) t = area_mean(t, d, P / s);
    const auto [index, valid] = leaf_pixel_index(leaves.index_select(0, idx), s, g);
    const auto keep = valid.reshape(-1).nonzero().squeeze(1);
    out_rows.index_copy_(0, index.reshape(-1).index_select(0, keep), t.reshape({-1, K}).index_select(0, keep));
  }
  return out;
}

#if SPVIT_HAVE_CUDA
// The CUDA paste's work list: (leaf, first row, rows) int32 triples covering every leaf row (ly + s·lz) that lies in
// the pixel tensor and the image, at most kPasteGroupPixels pixels per group (one block each). Built on the host,
// where the leaves are, so no GPU thread has to search for its leaf.
torch::Tensor paste_row_groups(const torch::Tensor& leaves_cpu, const LeafGeometry& g) {
  constexpr int64_t kGroupPixels = 2048;  // = kPasteGroupPixels in kernels/patch_resample.cuh
  std::vector<int32_t> groups;
  const auto a = leaves_cpu.accessor<int64_t, 2>();
  auto row_inside = [&](int axis, int64_t at) {
    return at < g.limit[static_cast<size_t>(axis)] && at >= g.origin[static_cast<size_t>(axis)] &&
           at < g.origin[static_cast<size_t>(axis)] + g.extent[static_cast<size_t>(axis)];
  };
  for (int64_t i = 0; i < leaves_cpu.size(0); ++i) {
    const int64_t s = a[i][3];
    if (s == 0) continue;
    const int64_t per_group = std::max<int64_t>(1, kGroupPixels / s), rows = g.dims == 3 ? s * s : s;
    int64_t open_first = -1, open_rows = 0;
    auto close = [&] {
      if (open_rows > 0) groups.insert(groups.end(), {static_cast<int32_t>(i), static_cast<int32_t>(open_first),
                                                      static_cast<int32_t>(open_rows)});
      open_rows = 0;
    };
    for (int64_t row = 0; row < rows; ++row) {
      const bool inside = row_inside(1, a[i][1] + row % s) && (g.dims == 2 || row_inside(2, a[i][2] + row / s));
      if (!inside || open_rows == per_group) close();  // groups are runs of consecutive inside rows
      if (!inside) continue;
      if (open_rows == 0) open_first = row;
      ++open_rows;
    }
    close();
  }
  SPVIT_CHECK(leaves_cpu.size(0) < (int64_t{1} << 31), "paste_leaves: too many leaves for the CUDA kernel");
  return torch::tensor(groups, torch::kInt).view({-1, 3});
}
#endif

}  // namespace

torch::Tensor make_leaves(const std::vector<int64_t>& x, const std::vector<int64_t>& y, const std::vector<int64_t>& z,
                          const std::vector<int64_t>& side) {
  const size_t n = side.size();
  SPVIT_CHECK(x.size() == n && y.size() == n && (z.empty() || z.size() == n), "make_leaves: x, y, z and side need ",
              n, " entries each (z may be empty), got ", x.size(), ", ", y.size(), ", ", z.size());
  auto leaves = torch::empty({static_cast<int64_t>(n), 4}, torch::kLong);
  auto a = leaves.accessor<int64_t, 2>();
  for (size_t i = 0; i < n; ++i) {
    const auto r = static_cast<int64_t>(i);
    a[r][0] = x[i];
    a[r][1] = y[i];
    a[r][2] = z.empty() ? 0 : z[i];
    a[r][3] = side[i];
  }
  return leaves;
}

torch::Tensor extract_leaves(const torch::Tensor& pixels, const std::vector<int64_t>& origin,
                             const std::vector<int64_t>& image_extent, const torch::Tensor& leaves, int64_t patch,
                             bool nearest, torch::ScalarType dtype) {
  SPVIT_CHECK(pixels.defined(), "extract_leaves: the pixel tensor is undefined");
  check_leaves(leaves, "extract_leaves");
  SPVIT_CHECK(torch::isFloatingType(dtype), "extract_leaves: the token dtype must be floating point, got ", dtype);
  const LeafGeometry g = geometry_of(pixels, origin, image_extent, patch, "extract_leaves");
#if SPVIT_HAVE_CUDA
  const bool input_ok = pixels.scalar_type() == torch::kByte || detail::kernel_dtype(pixels.scalar_type());
  if (pixels.is_cuda() && input_ok && detail::kernel_dtype(dtype)) {
    // One launch per leaf side (uniform work per launch); empty slots stay zero.
    std::vector<int64_t> members;
    std::vector<std::pair<int64_t, int64_t>> groups;
    for (const auto& [side, rows] : group_by_side(leaves.to(torch::kCPU), patch)) {
      members.insert(members.end(), rows.begin(), rows.end());
      groups.emplace_back(side, static_cast<int64_t>(rows.size()));
    }
    auto tokens = torch::zeros({leaves.size(0), g.channels * ipow(patch, g.dims)}, pixels.options().dtype(dtype));
    if (members.empty()) return tokens;
    cuda::extract_leaves(pixels.contiguous(), leaves.to(pixels.device()).contiguous(),
                         torch::tensor(members, torch::kLong).to(pixels.device()), groups, tokens, g, nearest);
    return tokens;
  }
#endif
  return extract_ops(pixels, g, leaves.to(pixels.device()), nearest, dtype);
}

torch::Tensor paste_leaves(const torch::Tensor& tokens, const torch::Tensor& leaves, int64_t patch,
                           const std::vector<int64_t>& lo, const std::vector<int64_t>& hi,
                           const std::vector<int64_t>& image_extent) {
  check_leaves(leaves, "paste_leaves");
  const int d = static_cast<int>(lo.size());
  SPVIT_CHECK(hi.size() == lo.size(), "paste_leaves: the region's lo and hi differ in length");
  const int64_t tile = ipow(patch, d);
  SPVIT_CHECK(tokens.defined() && tokens.is_floating_point() && tokens.dim() == 2 &&
                  tokens.size(0) == leaves.size(0) && patch >= 1 && tokens.size(1) % tile == 0 && tokens.size(1) > 0,
              "paste_leaves: tokens must be floating point [", leaves.size(0), ", K·", tile, "], got ",
              tokens.defined() ? tokens.sizes() : c10::IntArrayRef{});
  std::vector<int64_t> shape;
  for (int k = 0; k < d; ++k) shape.push_back(std::max<int64_t>(0, hi[d - 1 - k] - lo[d - 1 - k]));
  shape.push_back(tokens.size(1) / tile);
  auto out = torch::zeros(shape, tokens.options());
  const LeafGeometry g = geometry_of(out, lo, image_extent, patch, "paste_leaves");
#if SPVIT_HAVE_CUDA
  if (detail::use_cuda_kernel(tokens)) {
    const auto leaves_cpu = leaves.to(torch::kCPU).contiguous();
    group_by_side(leaves_cpu, patch);  // validates the sides
    const auto groups = paste_row_groups(leaves_cpu, g).to(tokens.device());
    cuda::paste_leaves(tokens.contiguous(), leaves_cpu.to(tokens.device()), groups, out, g);
    return out;
  }
#endif
  return paste_ops(tokens, leaves.to(tokens.device()), g, out);
}

}  // namespace spvit::kernels

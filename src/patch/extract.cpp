// Batched extract and paste. Leaves of one level all have the same side s, so an image region aligned to the
// largest side can be viewed as a grid of s-blocks ([B0, s, B1, s, .., C]); one advanced-indexing op gathers (or
// scatters) every leaf of the level, and one reshape-mean or interpolate call resizes them all.
#include "spvit/patch/extract.h"

#include <cmath>
#include <map>

#include "spvit/core/error.h"
#include "spvit/patch/scorer.h"  // check_image

namespace spvit::patch {

namespace F = torch::nn::functional;

namespace {

// The leaves of a token range that touch the image, grouped by side, and the smallest region aligned to the
// largest side that holds all of them (coordinate order).
struct Plan {
  std::map<int64_t, std::vector<int64_t>> groups;  // side -> token indices
  int64_t lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};        // aligned canvas
  int64_t need_lo[3] = {0, 0, 0}, need_hi[3] = {0, 0, 0};  // the leaves' in-image pixels
  bool any = false;
};

Plan make_plan(const PatchLayout& l, int64_t begin, int64_t end) {
  Plan p;
  const int d = l.spatial_dims;
  int64_t smax = 1;
  for (int64_t i = begin; i < end; ++i) {
    if (!l.intersects_image(i)) continue;  // empty slots and pure-padding leaves stay zero
    const int64_t s = l.side[static_cast<size_t>(i)];
    p.groups[s].push_back(i);
    smax = std::max(smax, s);
    for (int a = 0; a < d; ++a) {
      const int64_t c = l.coord(a, i);
      p.need_lo[a] = p.any ? std::min(p.need_lo[a], c) : c;
      p.need_hi[a] = std::max(p.need_hi[a], std::min(c + s, l.image_extent(a)));
    }
    p.any = true;
  }
  for (int a = 0; a < d; ++a) {
    p.lo[a] = p.need_lo[a] / smax * smax;
    p.hi[a] = (p.need_hi[a] + smax - 1) / smax * smax;
  }
  return p;
}

// Tensor dimension of coordinate axis a in a [.., H, W, C] tensor with d spatial dimensions.
int64_t dim_of(int d, int a) { return d - 1 - a; }

// Copies the overlap of src (whose first pixel is at src_lo) and dst (at dst_lo), limited to [0, limit).
void copy_overlap(torch::Tensor dst, const int64_t* dst_lo, const torch::Tensor& src, const int64_t* src_lo,
                  const int64_t* limit, int d) {
  torch::Tensor to = dst, from = src;
  for (int a = 0; a < d; ++a) {
    const int64_t k = dim_of(d, a);
    const int64_t start = std::max({dst_lo[a], src_lo[a], int64_t{0}});
    const int64_t stop = std::min({dst_lo[a] + dst.size(k), src_lo[a] + src.size(k), limit[a]});
    if (stop <= start) return;
    to = to.narrow(k, start - dst_lo[a], stop - start);
    from = from.narrow(k, start - src_lo[a], stop - start);
  }
  to.copy_(from);
}

// [B0, s, B1, s, .., C] view of a channels-last canvas, permuted to [B0, B1, .., s, s, .., C]: indexing the leading d
// dimensions addresses whole leaves, and a leaf's pixels keep their memory order (long contiguous runs).
torch::Tensor blocked(const torch::Tensor& canvas, int d, int64_t s) {
  std::vector<int64_t> shape, perm;
  for (int k = 0; k < d; ++k) {
    shape.push_back(canvas.size(k) / s);
    shape.push_back(s);
    perm.push_back(2 * k);
  }
  shape.push_back(canvas.size(d));
  for (int k = 0; k < d; ++k) perm.push_back(2 * k + 1);
  perm.push_back(2 * d);
  return canvas.view(shape).permute(perm);
}

// [n, C, a, b(, c)] <-> [n, a, b(, c), C] (views).
torch::Tensor to_channels_last(const torch::Tensor& t, int d) {
  std::vector<int64_t> perm = {0};
  for (int k = 0; k < d; ++k) perm.push_back(2 + k);
  perm.push_back(1);
  return t.permute(perm);
}

torch::Tensor to_channels_first(const torch::Tensor& t, int d) {
  std::vector<int64_t> perm = {0, d + 1};
  for (int k = 0; k < d; ++k) perm.push_back(1 + k);
  return t.permute(perm);
}

// Block indices (tensor dimension order) of the leaves `tokens` relative to the canvas origin.
std::vector<torch::Tensor> block_indices(const PatchLayout& l, const std::vector<int64_t>& tokens, const int64_t* lo,
                                         int64_t s, torch::Device device) {
  const int d = l.spatial_dims;
  std::vector<torch::Tensor> out;
  for (int k = 0; k < d; ++k) {
    const int a = static_cast<int>(dim_of(d, k));
    auto idx = torch::empty({static_cast<int64_t>(tokens.size())}, torch::kLong);
    auto* p = idx.data_ptr<int64_t>();
    for (size_t i = 0; i < tokens.size(); ++i) p[i] = (l.coord(a, tokens[i]) - lo[a]) / s;
    out.push_back(idx.to(device));
  }
  return out;
}

std::vector<torch::indexing::TensorIndex> as_index(const std::vector<torch::Tensor>& idx) {
  return {idx.begin(), idx.end()};
}

void narrow_rows(const std::vector<torch::Tensor>& idx, int64_t start, int64_t n, std::vector<torch::Tensor>* out) {
  out->clear();
  for (const auto& t : idx) out->push_back(t.narrow(0, start, n));
}

torch::Tensor token_rows(const std::vector<int64_t>& tokens, int64_t start, int64_t n, int64_t begin, torch::Device dev) {
  auto rows = torch::empty({n}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) rows.data_ptr<int64_t>()[i] = tokens[static_cast<size_t>(start + i)] - begin;
  return rows.to(dev);
}

// Mean over non-overlapping f-blocks of the d spatial dimensions of a channels-last [n, s, s(, s), C] ->
// [n, s/f, .., C]. One axis at a time (split it into (s/f, f), sum the f), innermost first: single-axis reductions
// are several times faster than one reduction over all the block axes, and the first one already shrinks the data
// f-fold. The first sum converts to `dtype`, so big uint8 leaves are never copied to float at full size.
torch::Tensor area_shrink(const torch::Tensor& t, int d, int64_t f, torch::ScalarType dtype) {
  torch::Tensor out = t;
  for (int k = d - 1; k >= 0; --k) {
    auto shape = out.sizes().vec();
    shape[1 + k] /= f;
    shape.insert(shape.begin() + 2 + k, f);
    out = out.reshape(shape).sum({2 + k}, false, dtype);
  }
  return out.div_(std::pow(static_cast<double>(f), d));
}

torch::Tensor enlarge(const torch::Tensor& t, int d, int64_t size, const std::string& mode) {
  std::vector<int64_t> out(static_cast<size_t>(d), size);
  auto opts = F::InterpolateFuncOptions().size(out);
  if (mode == "nearest") return F::interpolate(t, opts.mode(torch::kNearest));
  if (d == 2) return F::interpolate(t, opts.mode(torch::kBilinear).align_corners(false));
  return F::interpolate(t, opts.mode(torch::kTrilinear).align_corners(false));
}

// Elements per batched gather/scatter chunk in paste (extract takes it from its options).
constexpr int64_t kChunkElements = int64_t{1} << 22;

void check_range(const PatchLayout& l, int64_t begin, int64_t end) {
  if (begin < 0 || end < begin || end > l.length()) {
    SPVIT_THROW(ConfigError, "token range [", begin, ", ", end, ") is outside the layout's ", l.length(), " tokens");
  }
}

}  // namespace

torch::Tensor crop(const torch::Tensor& image, const std::vector<int64_t>& lo, const std::vector<int64_t>& hi) {
  const int d = static_cast<int>(lo.size());
  SPVIT_CHECK(hi.size() == lo.size() && image.dim() == d + 1, "crop: box and image dimensions differ");
  torch::Tensor out = image;
  for (int a = 0; a < d; ++a) {
    const int64_t k = dim_of(d, a);
    if (lo[a] < 0 || hi[a] < lo[a] || hi[a] > image.size(k)) {
      SPVIT_THROW(DataError, "crop: box [", lo[a], ", ", hi[a], ") on axis ", a, " is outside the image extent ", image.size(k));
    }
    out = out.narrow(k, lo[a], hi[a] - lo[a]);
  }
  return out;
}

torch::Tensor extract(const torch::Tensor& image, const PatchLayout& layout, const ExtractOptions& options) {
  check_image(image, layout.spatial_dims, "extract");
  auto size = image.sizes().vec();
  size.pop_back();
  if (size != layout.image_size) {
    SPVIT_THROW(DataError, "extract: image sizes ", image.sizes(), " do not match the layout's image ",
                c10::IntArrayRef(layout.image_size));
  }
  return extract_range(image, std::vector<int64_t>(static_cast<size_t>(layout.spatial_dims), 0), layout, 0,
                       layout.length(), options);
}

torch::Tensor extract_range(const torch::Tensor& crop_image, const std::vector<int64_t>& origin,
                            const PatchLayout& layout, int64_t begin, int64_t end, const ExtractOptions& options) {
  const int d = layout.spatial_dims;
  check_image(crop_image, d, "extract");
  check_range(layout, begin, end);
  SPVIT_CHECK(static_cast<int>(origin.size()) == d, "extract: origin needs ", d, " coordinates");
  if (options.enlarge != "bilinear" && options.enlarge != "nearest") {
    SPVIT_THROW(ConfigError, "extract: enlarge mode '", options.enlarge, "' is not one of bilinear, nearest");
  }
  const int64_t C = crop_image.size(-1), P = layout.patch;
  const int64_t tile = static_cast<int64_t>(std::pow(P, d));
  auto tokens = torch::zeros({end - begin, C * tile}, crop_image.options().dtype(options.dtype));
  const Plan plan = make_plan(layout, begin, end);
  if (!plan.any) return tokens;
  int64_t limit[3] = {0, 0, 0}, crop_hi[3] = {0, 0, 0};
  bool view_ok = true;
  for (int a = 0; a < d; ++a) {
    limit[a] = layout.image_extent(a);
    crop_hi[a] = origin[a] + crop_image.size(dim_of(d, a));
    if (origin[a] > plan.need_lo[a] || crop_hi[a] < plan.need_hi[a]) {
      SPVIT_THROW(DataError, "extract: the crop [", origin[a], ", ", crop_hi[a], ") on axis ", a,
                  " does not cover the leaves of tokens [", begin, ", ", end, "), which need [", plan.need_lo[a], ", ",
                  plan.need_hi[a], ")");
    }
    view_ok = view_ok && origin[a] <= plan.lo[a] && plan.hi[a] <= crop_hi[a] && plan.hi[a] <= limit[a];
  }
  // The aligned canvas: a view of the crop when it lies inside the image, else a zero-padded copy.
  torch::Tensor canvas;
  if (view_ok) {
    canvas = crop_image;
    for (int a = 0; a < d; ++a) canvas = canvas.narrow(dim_of(d, a), plan.lo[a] - origin[a], plan.hi[a] - plan.lo[a]);
  } else {
    std::vector<int64_t> shape;
    for (int k = 0; k < d; ++k) shape.push_back(plan.hi[dim_of(d, k)] - plan.lo[dim_of(d, k)]);
    shape.push_back(C);
    canvas = torch::zeros(shape, crop_image.options());
    copy_overlap(canvas, plan.lo, crop_image, origin.data(), limit, d);
  }
  for (const auto& [s, leaves] : plan.groups) {
    const auto view = blocked(canvas, d, s);
    const auto idx = block_indices(layout, leaves, plan.lo, s, crop_image.device());
    const int64_t per_chunk = std::max<int64_t>(1, options.chunk_elements / (C * static_cast<int64_t>(std::pow(s, d))));
    std::vector<torch::Tensor> part;
    for (int64_t start = 0; start < static_cast<int64_t>(leaves.size()); start += per_chunk) {
      const int64_t n = std::min<int64_t>(per_chunk, static_cast<int64_t>(leaves.size()) - start);
      narrow_rows(idx, start, n, &part);
      torch::Tensor t = view.index(as_index(part));  // [n, s, s(, s), C]
      t = to_channels_first(s > P ? area_shrink(t, d, s / P, options.dtype) : t.to(options.dtype), d);
      if (s < P) t = enlarge(t, d, P, options.enlarge);
      tokens.index_copy_(0, token_rows(leaves, start, n, begin, tokens.device()), t.reshape({n, C * tile}));
    }
  }
  return tokens;
}

torch::Tensor paste(const torch::Tensor& tokens, const PatchLayout& layout) {
  std::vector<int64_t> lo(static_cast<size_t>(layout.spatial_dims), 0), hi;
  for (int a = 0; a < layout.spatial_dims; ++a) hi.push_back(layout.image_extent(a));
  return paste_range(tokens, layout, 0, layout.length(), lo, hi);
}

torch::Tensor paste_range(const torch::Tensor& tokens, const PatchLayout& layout, int64_t begin, int64_t end,
                          const std::vector<int64_t>& lo, const std::vector<int64_t>& hi) {
  const int d = layout.spatial_dims;
  check_range(layout, begin, end);
  const int64_t P = layout.patch, tile = static_cast<int64_t>(std::pow(P, d));
  if (!tokens.defined() || tokens.dim() != 2 || tokens.size(0) != end - begin || tokens.size(1) % tile != 0 ||
      tokens.size(1) == 0) {
    SPVIT_THROW(DataError, "paste: expected tokens [", end - begin, ", K·", tile, "] for tokens [", begin, ", ", end,
                "), got ", tokens.defined() ? tokens.sizes() : c10::IntArrayRef{});
  }
  SPVIT_CHECK(static_cast<int>(lo.size()) == d && static_cast<int>(hi.size()) == d, "paste: region needs ", d, " coordinates");
  const int64_t K = tokens.size(1) / tile;
  const auto values = tokens.is_floating_point() ? tokens : tokens.to(torch::kFloat32);
  std::vector<int64_t> out_shape;
  for (int k = 0; k < d; ++k) out_shape.push_back(std::max<int64_t>(0, hi[dim_of(d, k)] - lo[dim_of(d, k)]));
  out_shape.push_back(K);
  const Plan plan = make_plan(layout, begin, end);
  if (!plan.any) return torch::zeros(out_shape, values.options());
  std::vector<int64_t> canvas_shape;
  for (int k = 0; k < d; ++k) canvas_shape.push_back(plan.hi[dim_of(d, k)] - plan.lo[dim_of(d, k)]);
  canvas_shape.push_back(K);
  auto canvas = torch::zeros(canvas_shape, values.options());
  std::vector<int64_t> tile_shape = {0, K};
  for (int k = 0; k < d; ++k) tile_shape.push_back(P);
  for (const auto& [s, leaves] : plan.groups) {
    auto view = blocked(canvas, d, s);
    const auto idx = block_indices(layout, leaves, plan.lo, s, values.device());
    const int64_t per_chunk = std::max<int64_t>(1, kChunkElements / (K * static_cast<int64_t>(std::pow(std::max(s, P), d))));
    std::vector<torch::Tensor> part;
    for (int64_t start = 0; start < static_cast<int64_t>(leaves.size()); start += per_chunk) {
      const int64_t n = std::min<int64_t>(per_chunk, static_cast<int64_t>(leaves.size()) - start);
      narrow_rows(idx, start, n, &part);
      tile_shape[0] = n;
      auto t = values.index_select(0, token_rows(leaves, start, n, begin, values.device())).view(tile_shape);
      if (s > P) {
        // Channels-last in and out, so that the enlarged tiles are already in the canvas's memory order.
        std::vector<int64_t> size(static_cast<size_t>(d), s);
        auto opts = F::InterpolateFuncOptions().size(size).align_corners(false);
        t = t.contiguous(d == 2 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::ChannelsLast3d);
        t = to_channels_last(F::interpolate(t, d == 2 ? opts.mode(torch::kBilinear) : opts.mode(torch::kTrilinear)), d);
      } else {
        t = to_channels_last(t, d);
        if (s < P) t = area_shrink(t, d, P / s, t.scalar_type());
      }
      view.index_put_(as_index(part), t);
    }
  }
  int64_t limit[3] = {0, 0, 0};
  bool same = true;  // the canvas is the requested region (e.g. a whole image whose sides are multiples of the
                     // largest leaf): return it instead of a second full-size copy
  for (int a = 0; a < d; ++a) {
    limit[a] = layout.image_extent(a);
    same = same && lo[a] == plan.lo[a] && hi[a] == plan.hi[a] && hi[a] <= limit[a];
  }
  if (same) return canvas;
  auto out = torch::zeros(out_shape, values.options());
  copy_overlap(out, lo.data(), canvas, plan.lo, limit, d);
  return out;
}

LayoutMetadata token_metadata(const PatchLayout& layout, int64_t begin, int64_t end, torch::Device device) {
  if (end < 0) end = layout.length();
  check_range(layout, begin, end);
  const int d = layout.spatial_dims;
  const int64_t n = end - begin;
  auto coords = torch::zeros({n, d + 1}, torch::kFloat32);
  auto valid = torch::zeros({n}, torch::kBool);
  auto* c = coords.data_ptr<float>();
  auto* v = valid.data_ptr<bool>();
  const double S = static_cast<double>(layout.root_side);
  const double log_root = std::max(1.0, std::log2(S));  // S = 1 (P = 1, 1-pixel image) would divide by zero
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = begin + i;
    if (layout.empty_slot(t)) continue;  // zeros; masked out as keys anyway
    const double s = static_cast<double>(layout.side[static_cast<size_t>(t)]);
    for (int a = 0; a < d; ++a) c[i * (d + 1) + a] = static_cast<float>((static_cast<double>(layout.coord(a, t)) + s / 2) / S);
    c[i * (d + 1) + d] = static_cast<float>(std::log2(s) / log_root);
    v[i] = true;
  }
  return {torch::arange(begin, end, torch::kLong).to(device), coords.to(device), valid.to(device)};
}

}  // namespace spvit::patch

#include "spvit/data/token_sampling.h"

#include <cmath>
#include <optional>
#include <tuple>

#include "spvit/core/error.h"
#include "spvit/patch/extract.h"
#include "spvit/patch/patcher.h"

namespace spvit::data {
namespace {

// Elements of one band read while planning on a shrunk sample (image + mask of the band are held at once).
constexpr int64_t kBandElements = int64_t{1} << 22;

// `region` (tensor order) of sample `index` after augmentation: only its preimage is read.
Sample read_augmented(const Dataset& dataset, int64_t index, const AugmentDraw& draw,
                            const Region& region) {
  const auto full = dataset.spatial_shape(index);
  return apply_augmentation_to_region(dataset.read(index, preimage(region, draw, full)), draw, region,
                                            full);
}

// The augmented sample's square box [x, x + side)² (2D, coordinate order) at `scale` (Dataset::read_scaled of its
// preimage, then the draw applied to the tile: flips and turns of the whole sample flip and turn each box's content),
// image and mask [side/scale, side/scale(, C)]; nullopt where the dataset has no scaled reads.
std::optional<Sample> read_scaled_augmented(const Dataset& dataset, int64_t index, const AugmentDraw& draw,
                                            int64_t x, int64_t y, int64_t side, int64_t scale) {
  const auto full = dataset.spatial_shape(index);
  const Region source = preimage(Region{{y, x}, {y + side, x + side}}, draw, full);
  ScaledRegion r;
  r.x = source.begin[1], r.y = source.begin[0], r.width = r.height = side / scale, r.scale = scale;
  auto tile = dataset.read_scaled(index, r);
  if (!tile) return std::nullopt;
  const std::vector<int64_t> shape{r.height, r.width};
  tile->region = full_region(shape);
  tile->full_shape = shape;
  return apply_augmentation_to_region(*tile, draw, full_region(shape), shape);
}

// The patcher for one sample: the configured one with the draw's threshold scale applied.
std::unique_ptr<patch::Patcher> sample_patcher(patch::PatcherOptions options, const AugmentDraw& draw) {
  options.scoring.canny_low *= draw.threshold_scale;
  options.scoring.canny_high *= draw.threshold_scale;
  return patch::make_patcher(options);
}

// The augmented sample shrunk by f per axis (area average), read band by band of f-multiple rows.
torch::Tensor shrunk_sample(const Dataset& dataset, int64_t index, const AugmentDraw& draw, int64_t f) {
  const auto full = dataset.spatial_shape(index);
  const int d = static_cast<int>(full.size());
  std::vector<int64_t> small;
  int64_t row_elements = dataset.channels();
  for (int k = 0; k < d; ++k) {
    if (full[k] % f != 0) {
      SPVIT_THROW(DataError, "sample ", index, " of shape ", shape_string(full),
                  " cannot be shrunk by data.patcher.score_downsample = ", f, ": every side must be a multiple of it");
    }
    small.push_back(full[k] / f);
    if (k > 0) row_elements *= full[k];
  }
  small.push_back(dataset.channels());
  auto out = torch::empty(small, torch::kFloat32);
  const int64_t rows = std::max<int64_t>(1, kBandElements / row_elements / f) * f;
  for (int64_t r0 = 0; r0 < full[0]; r0 += rows) {
    const int64_t n = std::min(rows, full[0] - r0);
    auto band = model_image(read_augmented(dataset, index, draw, band_region(full, 0, r0, n + r0)).image);
    std::vector<int64_t> blocks{n / f, f};
    std::vector<int64_t> axes{1};
    for (int k = 1; k < d; ++k) {
      blocks.push_back(full[k] / f);
      blocks.push_back(f);
      axes.push_back(2 * k + 1);
    }
    blocks.push_back(dataset.channels());
    out.narrow(0, r0 / f, n / f).copy_(band.reshape(blocks).mean(axes));
  }
  return out;
}

// A layout planned on a sample shrunk by f, scaled back to the full sample of `full` pixels and patch P.
patch::PatchLayout scaled_layout(patch::PatchLayout small, int64_t f, const std::vector<int64_t>& full, int64_t patch) {
  small.patch = patch;
  small.root_side *= f;
  small.min_side *= f;
  small.image_size = full;
  for (auto* v : {&small.x, &small.y, &small.z, &small.side}) {
    for (auto& e : *v) e *= f;
  }
  small.validate();
  return small;
}

// Region (tensor order) of a box given in coordinate order.
Region tensor_region(const std::vector<int64_t>& lo, const std::vector<int64_t>& hi) {
  Region r;
  r.begin.assign(lo.rbegin(), lo.rend());
  r.end.assign(hi.rbegin(), hi.rend());
  return r;
}

}  // namespace

LayoutSampling LayoutSampling::from_config(const Config& c, int seq_size, int seq_rank) {
  LayoutSampling s;
  s.patcher = patch::PatcherOptions::from_config(c.data.patcher, c.model, c.seed);
  s.score_downsample = c.data.patcher.score_downsample;
  s.seq_size = seq_size;
  s.seq_rank = seq_rank;
  return s;
}

patch::PatchLayout plan_layout(const Dataset& dataset, int64_t index, const AugmentDraw& draw,
                               const LayoutSampling& sampling, Sample* whole) {
  const auto full = dataset.spatial_shape(index);
  const auto& o = sampling.patcher;
  if (!patch::patchers().at(o.kind).adaptive) {  // the grid depends on the size only: nothing to read
    return patch::UniformPatcher(static_cast<int>(o.spatial_dims), o.patch, o.length, patch::TokenOrder::Raster)
        .plan_for_size(full);
  }
  const int64_t f = sampling.score_downsample;
  if (f == 1) {
    auto sample = read_augmented(dataset, index, draw, full_region(full));
    sample.image = model_image(sample.image);
    auto layout = sample_patcher(o, draw)->plan(sample.image, static_cast<uint64_t>(index));
    if (whole) *whole = std::move(sample);
    return layout;
  }
  auto shrunk = sampling.patcher;
  shrunk.patch = o.patch / f;
  shrunk.min_side = std::max<int64_t>(1, patch::resolve_min_side(o.patch, o.min_side) / f);
  // A multi-resolution source gives the shrunk sample from its pyramid (S²/f² pixels read, not S²).
  std::optional<Sample> pyramid;
  if (full.size() == 2 && full[0] == full[1] && full[0] % f == 0) {
    pyramid = read_scaled_augmented(dataset, index, draw, 0, 0, full[0], f);
  }
  const auto image = pyramid ? model_image(pyramid->image) : shrunk_sample(dataset, index, draw, f);
  auto small = sample_patcher(shrunk, draw)->plan(image, static_cast<uint64_t>(index));
  return scaled_layout(std::move(small), f, full, o.patch);
}

std::pair<torch::Tensor, torch::Tensor> tile_targets(const torch::Tensor& mask_crop, const std::vector<int64_t>& origin,
                                                     const patch::PatchLayout& layout, int64_t begin, int64_t end) {
  const int d = layout.spatial_dims;
  const int64_t P = layout.patch, n = end - begin;
  SPVIT_CHECK(begin >= 0 && begin <= end && end <= layout.length(), "tile targets: token range [", begin, ", ", end,
              ") is outside the layout's ", layout.length(), " tokens");
  SPVIT_CHECK(mask_crop.dim() == d && static_cast<int>(origin.size()) == d, "tile targets: a ", d,
              "-D mask crop and origin are needed, got ", mask_crop.sizes());
  auto corner = torch::empty({d, n, 1}, torch::kFloat64), side = torch::empty({n, 1}, torch::kFloat64);
  auto corner_of = corner.accessor<double, 3>();
  auto side_of = side.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    side_of[i][0] = static_cast<double>(layout.side[static_cast<size_t>(begin + i)]);  // 0 for an empty slot
    for (int a = 0; a < d; ++a) corner_of[a][i][0] = static_cast<double>(layout.coord(a, begin + i));
  }
  // Cell j of a leaf covers [corner + j·s/P, corner + (j+1)·s/P) per axis; s and P are powers of two, so all of
  // this is exact in float64 and identical on every rank.
  const auto cell = torch::arange(P, torch::kFloat64).view({1, P});
  const auto length = side / static_cast<double>(P);  // [n, 1]
  std::vector<torch::Tensor> pixel(static_cast<size_t>(d)), weight(static_cast<size_t>(d));
  for (int a = 0; a < d; ++a) {
    const int64_t dim = d - 1 - a;  // tensor dimension of coordinate axis a
    const auto start = corner[a] + cell * length;
    const auto inside = torch::minimum(torch::clamp_min(layout.image_extent(a) - start, 0.0), length.expand({n, P}));
    weight[static_cast<size_t>(a)] = inside;
    const auto centre = torch::floor(start + inside / 2).to(torch::kLong) - origin[static_cast<size_t>(a)];
    pixel[static_cast<size_t>(a)] = centre.clamp(0, std::max<int64_t>(0, mask_crop.size(dim) - 1));
  }
  // Broadcast the per-axis factors to [n, P, P(, P)] in tensor order (z,) y, x.
  auto spread = [&](const torch::Tensor& t, int a) {
    std::vector<int64_t> shape(static_cast<size_t>(d) + 1, 1);
    shape[0] = n;
    shape[static_cast<size_t>(d - a)] = P;
    return t.view(shape);
  };
  auto w = spread(weight[0], 0);
  for (int a = 1; a < d; ++a) w = w * spread(weight[static_cast<size_t>(a)], a);
  std::vector<int64_t> tile_shape{n};
  for (int a = 0; a < d; ++a) tile_shape.push_back(P);
  w = w.expand(tile_shape).contiguous();
  if (mask_crop.numel() == 0) {  // no in-image leaf in the range: every weight is 0
    return {torch::zeros(tile_shape, torch::kLong), w};
  }
  std::vector<torch::indexing::TensorIndex> index;
  for (int k = 0; k < d; ++k) index.emplace_back(spread(pixel[static_cast<size_t>(d - 1 - k)], d - 1 - k));
  auto target = mask_crop.index(index).expand(tile_shape).contiguous();
  return {target, w};
}

namespace {

// Tokens and targets of [begin, end) read leaf by leaf at each leaf's own scale (read_scaled_augmented): a leaf of
// side s >= P is one P×P read at scale s/P (its area average, as extract takes it; its labels at the blocks' pixels,
// as tile_targets takes them); a smaller one is read at full resolution and enlarged by extract_range. false where
// the dataset has no scaled reads or the layout has padding (root side != sample side).
bool read_leaf_tokens(const Dataset& dataset, int64_t index, const AugmentDraw& draw, const patch::PatchLayout& layout,
                      TokenSample& ts) {
  const auto full = dataset.spatial_shape(index);
  if (layout.spatial_dims != 2 || full[0] != layout.root_side || full[1] != layout.root_side) return false;
  const int64_t P = layout.patch, n = ts.end - ts.begin, C = dataset.channels();
  auto tokens = torch::zeros({n, C * P * P}, torch::kFloat32);
  auto target = torch::zeros({n, P, P}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = ts.begin + i, s = layout.side[static_cast<size_t>(t)];
    if (s == 0) continue;  // an empty slot: zero token, zero weight
    const int64_t x = layout.x[static_cast<size_t>(t)], y = layout.y[static_cast<size_t>(t)];
    const int64_t scale = std::max<int64_t>(1, s / P);
    auto tile = read_scaled_augmented(dataset, index, draw, x, y, s, scale);
    if (!tile) {
      if (i == 0) return false;  // no scaled reads: the caller reads the box
      SPVIT_THROW(DataError, "sample ", index, ": a scaled read failed after the first leaf");
    }
    const auto image = model_image(tile->image), mask = model_mask(tile->mask);
    if (s >= P) {
      tokens[i].copy_(image.permute({2, 0, 1}).reshape({-1}));
      target[i].copy_(mask);
    } else {
      tokens[i].copy_(patch::extract_range(image, {x, y}, layout, t, t + 1)[0]);
      target[i].copy_(tile_targets(mask, {x, y}, layout, t, t + 1).first[0]);
    }
  }
  ts.tokens = tokens;
  ts.target = target;
  // The weights depend on the layout only (the mask given is never looked at beyond its first pixel).
  ts.weight = tile_targets(torch::zeros({1, 1}, torch::kLong), ts.lo, layout, ts.begin, ts.end).second;
  return true;
}

}  // namespace

Sample read_token_sample(const Dataset& dataset, int64_t index, const AugmentDraw& draw,
                         const LayoutSampling& sampling, bool keep_box) {
  Sample whole;
  auto layout = std::make_shared<const patch::PatchLayout>(plan_layout(dataset, index, draw, sampling, &whole));
  return read_layout_tokens(dataset, index, draw, std::move(layout), sampling, keep_box, &whole);
}

Sample read_layout_tokens(const Dataset& dataset, int64_t index, const AugmentDraw& draw,
                          std::shared_ptr<const patch::PatchLayout> layout, const LayoutSampling& sampling,
                          bool keep_box, Sample* planned) {
  Sample whole = planned ? std::move(*planned) : Sample{};
  const auto segments = patch::sequence_segments(*layout, sampling.seq_size);
  const auto& segment = segments.at(static_cast<size_t>(sampling.seq_rank));
  auto ts = std::make_shared<TokenSample>();
  ts->layout = layout;
  ts->begin = segment.begin;
  ts->end = segment.end;
  ts->lo = segment.lo;
  ts->hi = segment.hi;
  ts->pixels = static_cast<double>(layout->num_pixels());

  Sample out;
  out.full_shape = dataset.spatial_shape(index);
  out.region = tensor_region(segment.lo, segment.hi);
  out.id = "sample_" + std::to_string(index);
  const int64_t n = segment.end - segment.begin;
  const bool adaptive = patch::patchers().at(sampling.patcher.kind).adaptive;
  if (segment.box_volume() > 0 && adaptive && !whole.image.defined() &&
      read_leaf_tokens(dataset, index, draw, *layout, *ts)) {
    // Read leaf by leaf from a pyramid: this rank never holds its box at full resolution, unless asked to keep it
    // (an evaluation overlay); the tokens are the leaf reads' all the same, as in training.
    if (keep_box) {
      Sample box = read_augmented(dataset, index, draw, out.region);
      out.id = box.id;
      out.image = model_image(box.image).contiguous();
      out.mask = model_mask(box.mask).contiguous();
    }
  } else if (segment.box_volume() > 0) {
    // The box of this rank's leaves: a view of the whole sample when it was read for planning, else read now.
    Sample box = whole.image.defined() ? crop(whole, out.region)
                                              : read_augmented(dataset, index, draw, out.region);
    box.image = model_image(box.image);
    box.mask = model_mask(box.mask);
    ts->tokens = patch::extract_range(box.image, segment.lo, *layout, segment.begin, segment.end);
    std::tie(ts->target, ts->weight) = tile_targets(box.mask, segment.lo, *layout, segment.begin, segment.end);
    out.id = box.id;
    if (keep_box) {
      out.image = box.image.contiguous();
      out.mask = box.mask.contiguous();
    }
  } else {  // only empty slots or padding: nothing to read
    int64_t features = dataset.channels();
    for (int a = 0; a < layout->spatial_dims; ++a) features *= layout->patch;
    ts->tokens = torch::zeros({n, features}, torch::kFloat32);
    std::tie(ts->target, ts->weight) =
        tile_targets(torch::zeros(std::vector<int64_t>(static_cast<size_t>(layout->spatial_dims), 0), torch::kLong),
                     segment.lo, *layout, segment.begin, segment.end);
  }
  out.tokens = std::move(ts);
  return out;
}

std::optional<Sample> read_leaf(const Dataset& dataset, int64_t index, const AugmentDraw& draw,
                                const patch::PatchLayout& layout, int64_t t) {
  if (layout.spatial_dims != 2) return std::nullopt;
  const auto i = static_cast<size_t>(t);
  const int64_t s = layout.side.at(i), x = layout.x[i], y = layout.y[i];
  const auto full = dataset.spatial_shape(index);
  if (s == 0 || x + s > full[1] || y + s > full[0]) return std::nullopt;
  return read_scaled_augmented(dataset, index, draw, x, y, s, 1);
}

const TokenSample& token_sample(const Sample& sample) {
  SPVIT_CHECK(sample.tokens != nullptr, "sample '", sample.id, "' carries no layout tokens (the tile decoder needs a "
              "loader with LoaderOptions::tokens, see train::make_loader)");
  return *sample.tokens;
}

}  // namespace spvit::data

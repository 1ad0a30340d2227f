// Flips, quarter turns and colour jitter, drawn from (seed, epoch, index) and applicable to one region of a sample.
#include "spvit/data/augment.h"

#include <ATen/Parallel.h>

#include "spvit/core/error.h"
#include "spvit/data/hash.h"

namespace spvit::data {

namespace {

int check_dims(const std::vector<int64_t>& full_shape, const char* what) {
  const int nd = static_cast<int>(full_shape.size());
  if (nd != 2 && nd != 3) SPVIT_THROW(Error, what, ": samples are 2-D or 3-D, got shape ", shape_string(full_shape));
  return nd;
}

// Inverse of the quarter turn on one point: coordinates (i, j) in the turned (y, x) plane -> the plane before it,
// whose sizes are (ny, nx). Matches torch::rot90(t, k, {y, x}) (k = 1: flip x then transpose).
std::pair<int64_t, int64_t> unrotate(int k, int64_t i, int64_t j, int64_t ny, int64_t nx) {
  switch (k) {
    case 1: return {j, nx - 1 - i};
    case 2: return {ny - 1 - i, nx - 1 - j};
    case 3: return {ny - 1 - j, i};
    default: return {i, j};
  }
}

}  // namespace

AugmentDraw draw_augmentation(const AugmentOptions& options, uint64_t seed, int64_t epoch, int64_t index) {
  // Every number is drawn whatever the options, so switching one augmentation off does not change the others.
  HashStream s(hash_key({seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index), 0xa06e47u}));
  const bool fy = s.bernoulli(0.5), fx = s.bernoulli(0.5), fz = s.bernoulli(0.5);
  const int k = static_cast<int>(s.bits() & 3u);
  const double b = s.uniform(-1.0, 1.0), c = s.uniform(-1.0, 1.0);
  const double t = s.uniform(-1.0, 1.0);  // drawn after those of earlier versions, which it leaves unchanged
  std::array<double, 3> stain_a{}, stain_b{};
  for (int k2 = 0; k2 < 3; ++k2) {
    stain_a[static_cast<size_t>(k2)] = s.uniform(-1.0, 1.0);
    stain_b[static_cast<size_t>(k2)] = s.uniform(-1.0, 1.0);
  }
  AugmentDraw d;
  d.flip_y = options.flips && fy;
  d.flip_x = options.flips && fx;
  d.flip_z = options.flips && fz;
  d.rot90 = options.rot90 ? k : 0;
  d.brightness = options.color_jitter * b;
  d.contrast = 1.0 + options.color_jitter * c;
  d.threshold_scale = 1.0 + options.threshold_jitter * t;
  for (size_t k2 = 0; k2 < 3; ++k2) {
    d.stain_scale[k2] = 1.0 + options.stain_jitter * stain_a[k2];
    d.stain_shift[k2] = options.stain_jitter * stain_b[k2];
  }
  return d;
}

torch::Tensor jitter_stains(const torch::Tensor& rgb, const std::array<double, 3>& scale,
                            const std::array<double, 3>& shift) {
  SPVIT_CHECK(rgb.size(-1) == 3, "stain jitter needs RGB images, got ", rgb.size(-1), " channel(s)");
  // skimage.color's rgb_from_hed (rows: haematoxylin, eosin, DAB optical densities per R, G, B) and its inverse.
  static const auto rgb_from_hed =
      torch::tensor({0.65, 0.70, 0.29, 0.07, 0.99, 0.11, 0.27, 0.57, 0.78}, torch::kFloat64).view({3, 3});
  static const auto hed_from_rgb = torch::inverse(rgb_from_hed);
  const double log_adjust = std::log(1e-6);  // densities normalised as skimage's rgb2hed / hed2rgb do
  const auto od = torch::log(rgb.to(torch::kFloat64).clamp_min(1e-6)) / log_adjust;
  auto stains = torch::matmul(od, hed_from_rgb);
  stains = stains * torch::tensor({scale[0], scale[1], scale[2]}, torch::kFloat64) +
           torch::tensor({shift[0], shift[1], shift[2]}, torch::kFloat64);
  return torch::exp(torch::matmul(stains, rgb_from_hed) * log_adjust).clamp(0.0, 1.0).to(rgb.scalar_type());
}

int effective_rot90(const AugmentDraw& draw, const std::vector<int64_t>& full_shape) {
  const int nd = check_dims(full_shape, "augmentation");
  const int k = ((draw.rot90 % 4) + 4) % 4;
  return full_shape[nd - 2] == full_shape[nd - 1] ? k : (k & 2);
}

Region preimage(const Region& region_of_augmented, const AugmentDraw& draw, const std::vector<int64_t>& full_shape) {
  const int nd = check_dims(full_shape, "augmentation preimage");
  check_region(region_of_augmented, full_shape, "augmentation preimage");
  const int yd = nd - 2, xd = nd - 1;
  const int k = effective_rot90(draw, full_shape);
  Region r = region_of_augmented;
  // Undo the turn: map the two inclusive corners and take their bounding box.
  const auto a = unrotate(k, r.begin[yd], r.begin[xd], full_shape[yd], full_shape[xd]);
  const auto b = unrotate(k, r.end[yd] - 1, r.end[xd] - 1, full_shape[yd], full_shape[xd]);
  r.begin[yd] = std::min(a.first, b.first);
  r.end[yd] = std::max(a.first, b.first) + 1;
  r.begin[xd] = std::min(a.second, b.second);
  r.end[xd] = std::max(a.second, b.second) + 1;
  // Undo the flips.
  auto unflip = [&](int d) {
    const int64_t n = full_shape[d], b0 = r.begin[d];
    r.begin[d] = n - r.end[d];
    r.end[d] = n - b0;
  };
  if (nd == 3 && draw.flip_z) unflip(0);
  if (draw.flip_y) unflip(yd);
  if (draw.flip_x) unflip(xd);
  return r;
}

namespace {

// One pass over the output: out(z, i, j, c) = op(in(src(z, i, j), c)), where src undoes the quarter turn and the
// flips. Along an output row the source moves by a constant stride, so the inner loop is a strided copy. (flip +
// rot90 + contiguous in LibTorch would allocate and touch three copies; first touches of fresh pages dominate.)
template <typename T, typename Op>
torch::Tensor remap(const torch::Tensor& input, int nd, const AugmentDraw& draw, int k, Op op) {
  const auto in = input.contiguous();
  const int64_t Z = nd == 3 ? in.size(0) : 1, H = in.size(nd - 2), W = in.size(nd - 1);
  const int64_t C = in.dim() > nd ? in.size(nd) : 1;
  const bool odd = k % 2 == 1;
  std::vector<int64_t> sizes = in.sizes().vec();
  if (odd) std::swap(sizes[nd - 2], sizes[nd - 1]);
  auto out = empty_buffer(sizes, in.scalar_type());
  const int64_t OH = odd ? W : H, OW = odd ? H : W;
  auto source = [&](int64_t z, int64_t i, int64_t j) {  // element offset of out(z, i, j, 0) in `in`
    auto [p, q] = unrotate(k, i, j, H, W);
    if (draw.flip_y) p = H - 1 - p;
    if (draw.flip_x) q = W - 1 - q;
    if (nd == 3 && draw.flip_z) z = Z - 1 - z;
    return ((z * H + p) * W + q) * C;
  };
  const T* src = in.data_ptr<T>();
  T* dst = out.data_ptr<T>();
  at::parallel_for(0, Z * OH, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t z = r / OH, i = r % OH;
      const int64_t base = source(z, i, 0), step = OW > 1 ? source(z, i, 1) - base : 0;
      T* o = dst + r * OW * C;
      for (int64_t j = 0; j < OW; ++j, o += C) {
        const T* s = src + base + j * step;
        for (int64_t c = 0; c < C; ++c) o[c] = op(s[c]);
      }
    }
  });
  return out;
}

}  // namespace

Sample apply_augmentation_to_region(const Sample& preimage_sample, const AugmentDraw& draw, const Region& target,
                                    const std::vector<int64_t>& full_shape) {
  const int nd = check_dims(full_shape, "augmentation");
  const Region source = preimage(target, draw, full_shape);
  if (!contains(preimage_sample.region, source)) {
    SPVIT_THROW(DataError, "augmenting region ", to_string(target), " of sample '", preimage_sample.id, "' needs ",
                to_string(source), " of the original, but the sample holds ", to_string(preimage_sample.region));
  }
  Sample s = crop(preimage_sample, source);
  const auto image_type = s.image.scalar_type(), mask_type = s.mask.scalar_type();
  SPVIT_CHECK((image_type == torch::kFloat32 || image_type == torch::kUInt8) &&
                  (mask_type == torch::kLong || mask_type == torch::kShort),
              "augmentation expects float32 or uint8 images and int64 or int16 masks, got ", image_type, " and ",
              mask_type);
  const int k = effective_rot90(draw, full_shape);
  const bool jitter = draw.brightness != 0.0 || draw.contrast != 1.0;
  // Colour changes work in float; an 8-bit image only moved around stays 8-bit.
  if (jitter || draw.stains_jittered()) s.image = model_image(s.image);
  if (draw.stains_jittered()) s.image = jitter_stains(s.image, draw.stain_scale, draw.stain_shift);  // per pixel
  if (k == 0 && !draw.flip_y && !draw.flip_x && !(nd == 3 && draw.flip_z) && !jitter) {  // identity
    s.image = s.image.contiguous();
    s.mask = s.mask.contiguous();
    s.region = target;
    return s;
  }
  if (jitter != 0.0 || draw.contrast != 1.0) {
    const float c = static_cast<float>(draw.contrast), b = static_cast<float>(0.5 + draw.brightness);
    s.image = remap<float>(s.image, nd, draw, k, [c, b](float v) { return std::min(std::max((v - 0.5f) * c + b, 0.f), 1.f); });
  } else if (s.image.scalar_type() == torch::kUInt8) {
    s.image = remap<uint8_t>(s.image, nd, draw, k, [](uint8_t v) { return v; });
  } else {
    s.image = remap<float>(s.image, nd, draw, k, [](float v) { return v; });
  }
  s.mask = mask_type == torch::kShort ? remap<int16_t>(s.mask, nd, draw, k, [](int16_t v) { return v; })
                                      : remap<int64_t>(s.mask, nd, draw, k, [](int64_t v) { return v; });
  s.region = target;
  s.full_shape = full_shape;
  return s;
}

Sample apply_augmentation(const Sample& sample, const AugmentDraw& draw) {
  return apply_augmentation_to_region(sample, draw, full_region(sample.full_shape), sample.full_shape);
}

}  // namespace spvit::data

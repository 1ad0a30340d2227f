// Per-pixel detail maps the scorers sum over regions. All are integer-valued (see scorer.h for why) and, except
// the Canny edge map, plain LibTorch ops that run on the image's device.
#include <cmath>

#include "spvit/build_info.h"
#include "spvit/core/error.h"
#include "spvit/patch/banding.h"
#include "spvit/patch/scorer.h"

#if SPVIT_HAVE_OPENCV
#include <opencv2/imgproc.hpp>
#endif

namespace spvit::patch {

namespace {

using detail::band_rows;
using detail::kBandElements;

// A copy of t, one element wider on each side of dimension `dim`, repeating the border (replicate padding that
// also works for integer tensors, which torch's pad modes do not accept).
torch::Tensor replicate_pad(const torch::Tensor& t, int64_t dim) {
  const int64_t n = t.size(dim);
  return torch::cat({t.narrow(dim, 0, 1), t, t.narrow(dim, n - 1, 1)}, dim);
}

// Rows [r0 - 1, r0 + rows + 1) of t along dimension 0, the out-of-range ones replaced by the border row: a band
// with a one-row halo for neighbourhood operators.
torch::Tensor band_with_halo(const torch::Tensor& t, int64_t r0, int64_t rows) {
  const auto idx = torch::arange(r0 - 1, r0 + rows + 1, torch::TensorOptions(torch::kLong).device(t.device()));
  return t.index_select(0, idx.clamp_(0, t.size(0) - 1));
}

uint64_t splitmix64(uint64_t v) {
  v += 0x9E3779B97F4A7C15ull;
  v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ull;
  v = (v ^ (v >> 27)) * 0x94D049BB133111EBull;
  return v ^ (v >> 31);
}

}  // namespace

void check_image(const torch::Tensor& image, int spatial_dims, const char* what) {
  if (!image.defined()) SPVIT_THROW(DataError, what, ": the image tensor is undefined");
  if (image.dim() != spatial_dims + 1) {
    SPVIT_THROW(DataError, what, ": expected a ", spatial_dims == 2 ? "[H, W, C]" : "[D, H, W, C]", " image, got sizes ",
                image.sizes());
  }
  if (image.numel() == 0) SPVIT_THROW(DataError, what, ": the image is empty (sizes ", image.sizes(), ")");
}

torch::Tensor to_gray(const torch::Tensor& image) {
  SPVIT_CHECK(image.dim() >= 2 && image.numel() > 0, "to_gray: expected a non-empty [..., C] image, got ", image.sizes());
  const int64_t C = image.size(-1);
  auto spatial = image.sizes().vec();
  spatial.pop_back();
  const auto pixels = image.reshape({-1, C});
  auto gray = torch::empty({pixels.size(0)}, image.options().dtype(torch::kByte));
  for (int64_t start = 0; start < pixels.size(0); start += kBandElements) {
    const int64_t n = std::min(kBandElements, pixels.size(0) - start);
    auto chunk = pixels.narrow(0, start, n);
    // Quantise each channel to 0..255 first, then combine with integer weights: exact on every device.
    torch::Tensor q = chunk.is_floating_point() ? chunk.to(torch::kFloat32).mul(255.0).round_() : chunk;
    q = q.to(torch::kInt32).clamp_(0, 255);
    torch::Tensor g;
    if (C == 1) {
      g = q.select(1, 0);
    } else if (C == 3 || C == 4) {
      g = q.select(1, 0).mul(299).add_(q.select(1, 1), 587).add_(q.select(1, 2), 114).add_(500);
      g = torch::div(g, 1000, "floor");
    } else {
      g = torch::div(q.sum({1}, false, torch::kInt32).add_(C / 2), C, "floor");
    }
    gray.narrow(0, start, n).copy_(g);
  }
  return gray.view(spatial);
}

torch::Tensor gradient_map(const torch::Tensor& gray) {
  SPVIT_CHECK(gray.dim() >= 2 && gray.numel() > 0, "gradient_map: expected a non-empty intensity map, got ", gray.sizes());
  // Central differences in int16 (|a - b| ≤ 255, at most 3 terms): half the memory of int32 on 16K² images.
  auto out = torch::empty(gray.sizes(), gray.options().dtype(torch::kShort));
  const int64_t n0 = gray.size(0), rows = band_rows(gray.numel() / n0);
  for (int64_t r0 = 0; r0 < n0; r0 += rows) {
    const int64_t b = std::min(rows, n0 - r0);
    const auto ext = band_with_halo(gray, r0, b).to(torch::kShort);  // replicated border along dimension 0
    const auto core = ext.narrow(0, 1, b);
    auto total = (ext.narrow(0, 2, b) - ext.narrow(0, 0, b)).abs_();
    for (int64_t d = 1; d < core.dim(); ++d) {
      const int64_t n = core.size(d);
      if (n < 2) continue;
      const auto p = replicate_pad(core, d);
      total.add_((p.narrow(d, 2, n) - p.narrow(d, 0, n)).abs_());
    }
    out.narrow(0, r0, b).copy_(total);
  }
  return out;
}

torch::Tensor lbp_codes(const torch::Tensor& gray) {
  SPVIT_CHECK(gray.dim() >= 2 && gray.numel() > 0, "lbp_codes: expected a non-empty intensity map, got ", gray.sizes());
  const int64_t H = gray.size(-2), W = gray.size(-1);
  const auto slices = gray.reshape({-1, H, W});
  auto out = torch::empty(slices.sizes(), gray.options().dtype(torch::kByte));
  // The 8 neighbours at radius 1 in circular order, so that bit transitions between consecutive ones are counted.
  static const int kOffsets[8][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, 1}, {1, 1}, {1, 0}, {1, -1}, {0, -1}};
  const int64_t rows = band_rows(W);
  for (int64_t n = 0; n < slices.size(0); ++n) {
    for (int64_t r0 = 0; r0 < H; r0 += rows) {
      const int64_t b = std::min(rows, H - r0);
      const auto p = replicate_pad(band_with_halo(slices[n], r0, b).to(torch::kShort), 1);  // [b + 2, W + 2]
      const auto centre = p.narrow(0, 1, b).narrow(1, 1, W);
      torch::Tensor count, transitions, first, previous;
      for (const auto& o : kOffsets) {
        auto bit = p.narrow(0, 1 + o[0], b).narrow(1, 1 + o[1], W).ge(centre).to(torch::kByte);
        if (!count.defined()) {
          count = bit.clone();
          transitions = torch::zeros_like(bit);
          first = bit;
        } else {
          count.add_(bit);
          transitions.add_(bit.ne(previous).to(torch::kByte));
        }
        previous = bit;
      }
      transitions.add_(previous.ne(first).to(torch::kByte));
      // Rotation-invariant uniform patterns (riu2): the number of set bits when there are ≤ 2 transitions, else 9.
      out[n].narrow(0, r0, b).copy_(count.masked_fill_(transitions.gt(2), 9));
    }
  }
  return out.view(gray.sizes());
}

torch::Tensor texture_map(const torch::Tensor& gray, int64_t window) {
  SPVIT_CHECK(window >= 2, "texture window must be >= 2, got ", window);
  const auto codes = lbp_codes(gray);
  const int64_t H = codes.size(-2), W = codes.size(-1), wb = (W + window - 1) / window;
  const auto slices = codes.reshape({-1, H, W});
  auto out = torch::empty(slices.sizes(), gray.options().dtype(torch::kInt32));
  const auto opts = torch::TensorOptions(torch::kLong).device(gray.device());
  const auto col_block = torch::arange(W, opts).div_(window, "floor");
  const int64_t rows = band_rows(W, window);
  for (int64_t n = 0; n < slices.size(0); ++n) {
    for (int64_t r0 = 0; r0 < H; r0 += rows) {
      const int64_t b = std::min(rows, H - r0), hb = (b + window - 1) / window;
      // Histogram of (block, code) pairs in one bincount; partial border blocks count only in-image pixels.
      const auto row_block = torch::arange(b, opts).div_(window, "floor");
      const auto bin = (row_block.unsqueeze(1) * wb + col_block.unsqueeze(0)) * 10 + slices[n].narrow(0, r0, b);
      const auto hist = torch::bincount(bin.flatten(), {}, hb * wb * 10).view({hb, wb, 10}).to(torch::kFloat64);
      const auto prob = hist / hist.sum(-1, true);
      const auto plogp = torch::where(prob.gt(0), prob * torch::log2(prob), torch::zeros_like(prob));
      const auto q = (-plogp.sum(-1)).mul_(1024.0).round_().to(torch::kInt32);  // [hb, wb]
      // Spread each block's value over its pixels.
      out[n].narrow(0, r0, b).copy_(
          q.repeat_interleave(window, 0).narrow(0, 0, b).repeat_interleave(window, 1).narrow(1, 0, W));
    }
  }
  return out.view(codes.sizes());
}

EdgeParams edge_params(const ScorerOptions& o, uint64_t sample) {
  if (!o.augment) return {o.blur_kernel, o.blur_sigma, o.canny_low, o.canny_high};
  // A hash of (seed, sample), not a stateful generator: the draw depends only on the sample, whichever rank or
  // loader worker computes it, and does not depend on the standard library's distribution implementations.
  const uint64_t r = splitmix64(o.seed ^ splitmix64(sample + 0x51ED));
  static const int64_t kKernels[4] = {1, 3, 5, 7};
  const double low = 50.0 + static_cast<double>(r % 50);
  return {kKernels[(r >> 32) % 4], 0.0, low, low + 50.0};
}

torch::Tensor edge_map(const torch::Tensor& gray, const EdgeParams& params) {
#if SPVIT_HAVE_OPENCV
  SPVIT_CHECK(gray.scalar_type() == torch::kByte && (gray.dim() == 2 || gray.dim() == 3) && gray.numel() > 0,
              "edge_map: expected a non-empty uint8 [H, W] or [D, H, W] map, got ", gray.sizes());
  if (params.blur_kernel < 1 || params.blur_kernel % 2 == 0) {
    SPVIT_THROW(ConfigError, "edges scorer: blur kernel must be odd and >= 1, got ", params.blur_kernel);
  }
  // OpenCV runs on the host; a GPU edge kernel belongs to the kernels layer.
  const auto host = gray.to(torch::kCPU).contiguous();
  const auto slices = host.dim() == 2 ? host.unsqueeze(0) : host;
  auto out = torch::empty_like(slices);
  const int rows = static_cast<int>(slices.size(1)), cols = static_cast<int>(slices.size(2));
  for (int64_t s = 0; s < slices.size(0); ++s) {
    cv::Mat src(rows, cols, CV_8UC1, slices[s].data_ptr<uint8_t>());
    cv::Mat blurred;
    if (params.blur_kernel > 1) {
      const int k = static_cast<int>(params.blur_kernel);
      cv::GaussianBlur(src, blurred, cv::Size(k, k), params.blur_sigma);
    } else {
      blurred = src;
    }
    cv::Mat edges(rows, cols, CV_8UC1, out[s].data_ptr<uint8_t>());
    cv::Canny(blurred, edges, params.low, params.high);
    SPVIT_CHECK(edges.data == out[s].data_ptr<uint8_t>(), "cv::Canny reallocated its output");
  }
  out.clamp_max_(1);  // Canny marks edges with 255; in place to avoid another full-size map
  if (gray.dim() == 2) out = out.squeeze(0);
  return out.to(gray.device());
#else
  (void)gray;
  (void)params;
  SPVIT_THROW(Error, "the 'edges' scorer needs OpenCV, which this build does not have (configure with "
                     "-DSPVIT_WITH_OPENCV=ON); the variance, gradient and texture scorers work without it");
#endif
}

}  // namespace spvit::patch

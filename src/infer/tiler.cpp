#include "spvit/infer/tiler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "spvit/core/error.h"

namespace spvit::infer {

std::vector<int64_t> tile_origins(int64_t length, int64_t tile, int64_t overlap) {
  SPVIT_CHECK(tile > 0 && overlap >= 0 && overlap < tile, "tile ", tile, " and overlap ", overlap,
              " must satisfy 0 <= overlap < tile");
  std::vector<int64_t> origins{0};
  if (length <= tile) return origins;
  const int64_t stride = tile - overlap;
  while (origins.back() + tile < length) origins.push_back(std::min(origins.back() + stride, length - tile));
  return origins;
}

torch::Tensor blend_window(int64_t tile, int64_t overlap, const std::string& blend) {
  auto i = torch::arange(tile, torch::kFloat64) + 0.5;
  torch::Tensor w;
  if (blend == "gaussian") {
    const double sigma = static_cast<double>(tile) / 8.0, c = static_cast<double>(tile) / 2.0;
    w = torch::exp(-(i - c).pow(2) / (2 * sigma * sigma));
  } else if (blend == "linear") {
    // Ramps over the overlap from 1/(O+1) to 1, flat in between.
    const double ramp = static_cast<double>(overlap + 1);
    w = torch::minimum(torch::minimum(i + 0.5, static_cast<double>(tile) - i + 0.5), torch::full_like(i, ramp)) / ramp;
  } else {
    SPVIT_THROW(ConfigError, "blend '", blend, "' is not one of gaussian, linear");
  }
  w = w / w.max();
  w = w.clamp_min(1e-3);  // never zero: a pixel covered only by tile borders still gets a prediction
  return torch::outer(w, w).to(torch::kFloat32);
}

TilerStats run_tiled(const Slide& slide, const SlideLevel& L, const TissueMask* tissue, const TilePredictor& predict,
                     int64_t classes, const TilerOptions& o, const RowSink& sink) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t W = L.width, H = L.height, T = o.tile, C = classes;
  SPVIT_CHECK(o.batch >= 1, "batch must be >= 1, got ", o.batch);
  SPVIT_CHECK(C >= 1 && C <= 255, "classes must be in 1..255, got ", C);
  const auto xs = tile_origins(W, T, o.overlap), ys = tile_origins(H, T, o.overlap);
  const auto window = blend_window(T, o.overlap, o.blend);
  const double ds = L.downsample;

  TilerStats stats;
  stats.width = W, stats.height = H;
  stats.tiles_total = static_cast<int64_t>(xs.size() * ys.size());
  stats.class_pixels.assign(static_cast<size_t>(C), 0);
  // Which tiles touch tissue (level-0 boxes), counted first so that progress knows the total.
  auto touches = [&](int64_t ox, int64_t oy) {
    if (tissue == nullptr) return true;
    return tissue->touches(static_cast<int64_t>(std::floor(ox * ds)), static_cast<int64_t>(std::floor(oy * ds)),
                           static_cast<int64_t>(std::ceil(std::min(ox + T, W) * ds)),
                           static_cast<int64_t>(std::ceil(std::min(oy + T, H) * ds)));
  };
  std::vector<std::vector<int64_t>> run_x(ys.size());
  int64_t tissue_tiles = 0;
  for (size_t r = 0; r < ys.size(); ++r) {
    for (int64_t ox : xs) {
      if (touches(ox, ys[r])) run_x[r].push_back(ox), ++tissue_tiles;
    }
  }
  stats.tiles_run = tissue_tiles;
  stats.tiles_skipped = stats.tiles_total - tissue_tiles;
  if (o.progress) o.progress(0, tissue_tiles);  // tiling starts: the clock of the rate and the ETA

  // Columns [lo, hi) of the tiles run in tile rows first..last (lo >= hi: none). Every rank computes the same
  // spans from run_x, so all of them skip the same reductions; outside the span a stripe is background, and the
  // per-stripe work (reduce, argmax, counts) is done on the span only: glass costs almost nothing, however wide.
  auto run_span = [&](size_t first, size_t last) {
    int64_t lo = W, hi = 0;
    for (size_t r = first; r <= last && r < run_x.size(); ++r) {
      if (run_x[r].empty()) continue;
      lo = std::min(lo, run_x[r].front());
      hi = std::max(hi, std::min(W, run_x[r].back() + T));
    }
    return std::make_pair(lo, hi);
  };

  // acc[0:C] = sum of weighted probabilities, acc[C] = sum of weights, for rows [base, base + T) of the level.
  auto acc = torch::zeros({C + 1, T, W}, torch::kFloat32);
  int64_t base = 0, tile_index = 0, done = 0;
  torch::NoGradGuard no_grad;
  for (size_t r = 0; r < ys.size(); ++r) {
    const int64_t oy = ys[r];
    SPVIT_CHECK(oy == base, "internal: stripe base ", base, " != tile row origin ", oy);
    // This rank's tiles of the row, in batches.
    std::vector<int64_t> mine;
    for (int64_t ox : run_x[r]) {
      if (tile_index++ % o.world == o.rank) mine.push_back(ox);
    }
    for (size_t b0 = 0; b0 < mine.size(); b0 += static_cast<size_t>(o.batch)) {
      const size_t nb = std::min(mine.size() - b0, static_cast<size_t>(o.batch));
      auto rgb = torch::empty({static_cast<int64_t>(nb), T, T, 3}, torch::kUInt8);
      for (size_t k = 0; k < nb; ++k) {
        cv::Mat tile = read_rgb_scaled(slide, ds, mine[b0 + k], oy, T, T);
        std::memcpy(rgb[static_cast<int64_t>(k)].data_ptr<uint8_t>(), tile.data, static_cast<size_t>(T * T * 3));
      }
      auto input = rgb.permute({0, 3, 1, 2}).to(torch::kFloat32).div_(255.0f).contiguous();
      auto probs = predict(input);
      SPVIT_CHECK(probs.dim() == 4 && probs.size(0) == static_cast<int64_t>(nb) && probs.size(1) == C &&
                      probs.size(2) == T && probs.size(3) == T,
                  "the model returned ", probs.sizes(), " for a batch of ", nb, " tiles; expected [", nb, ", ", C,
                  ", ", T, ", ", T, "]");
      probs = probs.to(torch::kCPU, torch::kFloat32);
      for (size_t k = 0; k < nb && !o.follower; ++k) {
        const int64_t ox = mine[b0 + k], h = std::min(T, H - oy), w = std::min(T, W - ox);
        auto win = window.narrow(0, 0, h).narrow(1, 0, w);
        auto dst = acc.narrow(1, 0, h).narrow(2, ox, w);
        dst.narrow(0, 0, C).add_(probs[static_cast<int64_t>(k)].narrow(1, 0, h).narrow(2, 0, w) * win);
        dst[C].add_(win);
      }
      done += static_cast<int64_t>(nb);
      if (o.progress) o.progress(std::min(done * o.world, tissue_tiles), tissue_tiles);
    }
    if (o.follower) {
      base = r + 1 < ys.size() ? ys[r + 1] : H;
      continue;
    }
    if (o.world > 1 && o.reduce) {
      // Ranks > 0 hold only tile row r's contributions (they restart from zero every stripe): sum its span.
      const auto [lo, hi] = run_span(r, r);
      if (hi > lo) {
        auto span = acc.narrow(2, lo, hi - lo).contiguous();
        o.reduce(span);
        acc.narrow(2, lo, hi - lo).copy_(span);
      }
    }
    // Rows before the next tile row's origin are final.
    const int64_t next = r + 1 < ys.size() ? ys[r + 1] : H;
    const int64_t k = std::min(next, H) - base;
    if (o.rank == 0 && k > 0) {
      // Tile rows reaching into [base, next): this one and earlier ones whose tiles extend past base.
      size_t first = r;
      while (first > 0 && ys[first - 1] + T > base) --first;
      const auto [lo, hi] = run_span(first, r);
      auto labels = torch::zeros({k, W}, torch::kUInt8);
      stats.class_pixels[0] += k * (W - std::max<int64_t>(0, hi - lo));  // outside the span: background
      if (hi > lo) {
        auto part = acc.narrow(1, 0, k).narrow(2, lo, hi - lo);
        auto covered = part[C] > 0;
        auto span_labels =
            part.narrow(0, 0, C).argmax(0).to(torch::kUInt8).masked_fill_(covered.logical_not(), 0);
        labels.narrow(1, lo, hi - lo).copy_(span_labels);
        stats.covered_pixels += covered.sum().item<int64_t>();
        auto hist = torch::bincount(span_labels.flatten().to(torch::kLong), {}, C);
        for (int64_t c = 0; c < C; ++c) stats.class_pixels[static_cast<size_t>(c)] += hist[c].item<int64_t>();
      }
      cv::Mat rows(static_cast<int>(k), static_cast<int>(W), CV_8U, labels.data_ptr<uint8_t>());
      torch::Tensor p;
      if (o.probabilities) {
        auto part = acc.narrow(1, 0, k);
        p = part.narrow(0, 0, C) / part[C].clamp_min(1e-30).unsqueeze(0);
      }
      sink(base, rows, p);
    }
    // Shift the unfinished rows to the top. On ranks > 0 the carried rows are dropped: rank 0 carries them, and
    // the next reduce adds only the other ranks' new contributions.
    if (k < T) {
      if (o.rank == 0 || o.world == 1) {
        acc.narrow(1, 0, T - k).copy_(acc.narrow(1, k, T - k).clone());
        acc.narrow(1, T - k, k).zero_();
      } else {
        acc.zero_();
      }
    } else {
      acc.zero_();
    }
    base = next;
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace spvit::infer

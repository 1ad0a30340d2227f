// Sliding-window inference over volumes (volume_window.h).
#include "spvit/infer/volume_window.h"

#include <algorithm>
#include <cmath>

#include "spvit/core/error.h"

namespace spvit::infer {

std::vector<int64_t> window_starts(int64_t n, int64_t window, double overlap) {
  SPVIT_CHECK(window > 0 && overlap >= 0 && overlap < 1, "window ", window, " / overlap ", overlap, " out of range");
  if (n <= window) return {0};
  const double step = std::max(1.0, static_cast<double>(window) * (1 - overlap));
  const auto steps = static_cast<int64_t>(std::ceil(static_cast<double>(n - window) / step)) + 1;
  std::vector<int64_t> starts;
  const double spread = static_cast<double>(n - window) / static_cast<double>(steps - 1);
  for (int64_t i = 0; i < steps; ++i) starts.push_back(std::llround(spread * static_cast<double>(i)));
  return starts;
}

torch::Tensor window_weights(int64_t window, const std::string& blend) {
  if (blend == "constant") return torch::ones({window, window, window});
  SPVIT_CHECK(blend == "gaussian", "unknown blend '", blend, "' (gaussian or constant)");
  // nnU-Net's importance map: a Gaussian of σ = S / 8 centred on the window, normalised to a maximum of 1.
  const double sigma = static_cast<double>(window) / 8, centre = static_cast<double>(window - 1) / 2;
  const auto x = torch::arange(window, torch::kFloat64);
  const auto g = torch::exp(-(x - centre).pow(2) / (2 * sigma * sigma));
  auto w = g.view({-1, 1, 1}) * g.view({1, -1, 1}) * g.view({1, 1, -1});
  w = w / w.max();
  const double smallest = w.masked_select(w > 0).min().item<double>();
  return w.clamp_min(smallest).to(torch::kFloat32);
}

VolumeWindowStats run_volume_windows(const std::array<int64_t, 3>& shape, int64_t channels, int64_t classes,
                                     const VolumeSliceReader& read, const VolumePredictor& predict,
                                     const VolumeWindowOptions& o, const VolumeSliceSink& sink) {
  using torch::indexing::Slice;
  const int64_t S = o.window, D = shape[0], H = shape[1], W = shape[2];
  SPVIT_CHECK(D > 0 && H > 0 && W > 0 && channels > 0 && classes > 0 && o.batch > 0, "empty volume or bad options");
  // The padded plane: an axis shorter than a window is zero-padded up to it.
  const int64_t PH = std::max(H, S), PW = std::max(W, S);
  const auto zs = window_starts(D, S, o.overlap), ys = window_starts(H, S, o.overlap),
             xs = window_starts(W, S, o.overlap);
  const auto weights = window_weights(S, o.blend);
  VolumeWindowStats stats;
  const int64_t total = static_cast<int64_t>(zs.size() * ys.size() * xs.size());
  if (o.progress) o.progress(0, total);
  // Accumulators for slices [band0, band0 + S): weighted probability sums and weight sums.
  auto acc = torch::zeros({classes, S, PH, PW});
  auto wsum = torch::zeros({S, PH, PW});
  stats.peak_accumulator_bytes = (acc.numel() + wsum.numel()) * 4;
  int64_t band0 = zs.front();
  // Emits finished slices [band0, z_end) (clipped to the volume) and moves the band to start at `next`.
  const auto finish = [&](int64_t z_end, int64_t next) {
    const int64_t n = std::min(z_end, D) - band0;
    if (n > 0) {
      auto probs = acc.narrow(1, 0, n).narrow(2, 0, H).narrow(3, 0, W) / wsum.narrow(0, 0, n).narrow(1, 0, H).narrow(2, 0, W);
      sink(band0, probs.contiguous());
    }
    const int64_t shift = next - band0;
    if (shift <= 0) return;
    auto acc_next = torch::zeros_like(acc);
    auto w_next = torch::zeros_like(wsum);
    if (shift < S) {
      acc_next.narrow(1, 0, S - shift).copy_(acc.narrow(1, shift, S - shift));
      w_next.narrow(0, 0, S - shift).copy_(wsum.narrow(0, shift, S - shift));
    }
    acc = acc_next;
    wsum = w_next;
    band0 = next;
  };
  for (size_t zi = 0; zi < zs.size(); ++zi) {
    const int64_t z = zs[zi];
    // This row's input slices, zero-padded to S slices and the padded plane.
    auto slab = torch::zeros({channels, S, PH, PW});
    const int64_t real = std::min(D, z + S) - z;
    const auto input = read(z, z + real);
    SPVIT_CHECK(input.dim() == 4 && input.size(0) == channels && input.size(1) == real && input.size(2) == H &&
                    input.size(3) == W,
                "the volume reader returned ", input.sizes(), " for slices ", z, "..", z + real);
    slab.index({Slice(), Slice(0, real), Slice(0, H), Slice(0, W)}).copy_(input);
    std::vector<std::pair<int64_t, int64_t>> row;
    for (int64_t y : ys) {
      for (int64_t x : xs) row.emplace_back(y, x);
    }
    for (size_t b0 = 0; b0 < row.size(); b0 += static_cast<size_t>(o.batch)) {
      const size_t b1 = std::min(row.size(), b0 + static_cast<size_t>(o.batch));
      std::vector<torch::Tensor> windows;
      for (size_t b = b0; b < b1; ++b) {
        windows.push_back(slab.index({Slice(), Slice(), Slice(row[b].first, row[b].first + S),
                                      Slice(row[b].second, row[b].second + S)}));
      }
      const auto probs = predict(torch::stack(windows));
      SPVIT_CHECK(probs.dim() == 5 && probs.size(0) == static_cast<int64_t>(b1 - b0) && probs.size(1) == classes &&
                      probs.size(2) == S && probs.size(3) == S && probs.size(4) == S,
                  "the model returned ", probs.sizes(), " for ", b1 - b0, " windows of ", S, "³ and ", classes,
                  " classes");
      for (size_t b = b0; b < b1; ++b) {
        const auto [y, x] = row[b];
        acc.index({Slice(), Slice(z - band0, z - band0 + S), Slice(y, y + S), Slice(x, x + S)})
            .add_(probs[static_cast<int64_t>(b - b0)].to(torch::kFloat32) * weights);
        wsum.index({Slice(z - band0, z - band0 + S), Slice(y, y + S), Slice(x, x + S)}).add_(weights);
      }
      stats.windows += static_cast<int64_t>(b1 - b0);
      if (o.progress) o.progress(stats.windows, total);
    }
    const bool last = zi + 1 == zs.size();
    if (last) {
      finish(z + S, z + S);
    } else {
      finish(zs[zi + 1], zs[zi + 1]);
    }
  }
  return stats;
}

}  // namespace spvit::infer

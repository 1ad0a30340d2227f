#include "spvit/model/unetr_decoder.h"

#include <cmath>

#include "spvit/core/error.h"
#include "spvit/core/int_math.h"
#include "spvit/dist/collectives.h"
#include "spvit/model/checkpoint.h"

namespace spvit::model {

UnetrDecoderImpl::UnetrDecoderImpl(const DecoderOptions& o) : options_(o) {
  const int64_t E = o.dim;
  SPVIT_CHECK(o.patch >= 2 && is_power_of_two(o.patch), "the unetr decoder needs a power-of-two patch, got ", o.patch);
  while ((int64_t{1} << stages_) < o.patch) ++stages_;
  // Skips from blocks spread over the depth (UNETR uses blocks 3, 6, 9 of 12): deeper taps feed coarser stages.
  for (int64_t j = 1; j < stages_; ++j) {
    taps_.push_back(std::max<int64_t>(0, j * o.depth / stages_ - 1));
  }
  auto width = [&](int64_t stage) { return o.width << (stages_ - stage); };  // stage 1..stages_
  for (int64_t j = 1; j <= stages_; ++j) {
    const int64_t in = j == 1 ? E : width(j - 1);
    up_.push_back(register_module("up" + std::to_string(j), UpConv(in, width(j), o.spatial_dims)));
    std::vector<UpConv> chain;
    for (int64_t s = 0; j < stages_ && s < j; ++s) {
      chain.push_back(register_module("skip" + std::to_string(j) + "_" + std::to_string(s),
                                      UpConv(s == 0 ? E : width(j), width(j), o.spatial_dims)));
    }
    skip_up_.push_back(chain);
    fuse_.push_back(register_module("fuse" + std::to_string(j), HaloConv(2 * width(j), width(j), 3, o.spatial_dims)));
  }
  stem_ = register_module("stem", HaloConv(o.channels, width(stages_), 3, o.spatial_dims));
  head_ = register_module("head", HaloConv(width(stages_), o.classes, 1, o.spatial_dims));
}

// Counts the layers the constructor above builds, at the resolution each runs at: stage j works on a grid 2^j times
// finer per side than the tokens (2^(j·d) positions per token). A convolution costs 2·C_in·C_out·k^d FLOPs per
// output position; a ×2 transposed convolution 2·C_in·C_out per output position.
double UnetrDecoderImpl::forward_flops_per_token(const DecoderOptions& o) {
  int64_t stages = 0;
  while ((int64_t{1} << stages) < o.patch) ++stages;
  const double d = o.spatial_dims, taps3 = std::pow(3.0, d), E = static_cast<double>(o.dim);
  auto width = [&](int64_t stage) { return static_cast<double>(o.width << (stages - stage)); };
  auto positions = [&](int64_t stage) { return std::pow(2.0, d * static_cast<double>(stage)); };
  double flops = 0;
  for (int64_t j = 1; j <= stages; ++j) {
    const double in = j == 1 ? E : width(j - 1), w = width(j);
    flops += 2.0 * in * w * positions(j);                                   // up_j
    for (int64_t s = 0; j < stages && s < j; ++s) {                         // skip chain of stage j
      flops += 2.0 * (s == 0 ? E : w) * w * positions(s + 1);
    }
    flops += 2.0 * (2.0 * w) * w * taps3 * positions(j);                    // fuse_j: 3x3 over [main ‖ skip]
  }
  const double finest = positions(stages), w = width(stages);
  flops += 2.0 * static_cast<double>(o.channels) * w * taps3 * finest;     // stem on the raw image
  flops += 2.0 * w * static_cast<double>(o.classes) * finest;              // 1x1 head
  return flops;
}

torch::Tensor UnetrDecoderImpl::forward(const DecoderInput& in) {
  SPVIT_CHECK(in.bands != nullptr && in.image_band.defined(),
              "the unetr decoder decodes a band of a uniform grid: it needs the image rows and the band");
  const auto& bands = *in.bands;
  std::vector<int64_t> band_grid = bands.grid;
  band_grid[0] = bands.rows();
  std::vector<torch::Tensor> grids;  // views, no copies
  for (const auto& f : in.features) grids.push_back(tokens_to_grid(f, band_grid));
  if (options_.chunk_rows > 0) return decode_in_chunks(grids, in.image_band, bands, in.comm);
  return decode(grids, in.image_band, in.comm, weights());
}

std::vector<torch::Tensor> UnetrDecoderImpl::weights() const {
  std::vector<torch::Tensor> w;
  auto add = [&w](const torch::Tensor& weight, const torch::Tensor& bias) {
    w.push_back(weight);
    w.push_back(bias);
  };
  for (int64_t j = 1; j <= stages_; ++j) {
    add(up_[j - 1]->weight(), up_[j - 1]->bias());
    if (j < stages_) {
      for (const auto& up : skip_up_[j - 1]) add(up->weight(), up->bias());
    } else {
      add(stem_->weight(), stem_->bias());
    }
    add(fuse_[j - 1]->weight(), fuse_[j - 1]->bias());
  }
  add(head_->weight(), head_->bias());
  return w;
}

torch::Tensor UnetrDecoderImpl::decode(const std::vector<torch::Tensor>& grids, const torch::Tensor& image,
                                    const dist::CommPtr& comm, const std::vector<torch::Tensor>& weights) const {
  size_t next = 0;  // weights are read in decoder_weights() order
  auto take = [&]() -> std::pair<torch::Tensor, torch::Tensor> {
    next += 2;
    return {weights.at(next - 2), weights.at(next - 1)};
  };
  auto x = grids.back();
  for (int64_t j = 1; j <= stages_; ++j) {
    const auto up = take();
    x = up_conv(x, up.first, up.second);
    torch::Tensor skip;
    if (j < stages_) {
      skip = grids[static_cast<size_t>(stages_ - j - 1)];  // deeper taps feed coarser stages
      for (size_t s = 0; s < skip_up_[j - 1].size(); ++s) {
        const auto chain = take();
        skip = up_conv(skip, chain.first, chain.second);
      }
    } else {
      const auto stem = take();
      skip = torch::gelu(halo_conv(image, comm, stem.first, stem.second));
    }
    const auto fuse = take();
    x = torch::gelu(halo_conv(torch::cat({x, skip}, 1), comm, fuse.first, fuse.second));
  }
  const auto head = take();
  return halo_conv(x, comm, head.first, head.second);
}

// Why one token row of context per side is enough: a chunk's outer rows are wrong only where a 3×3 convolution
// met the chunk's zero padding instead of the true neighbour. Stage j (2^j pixels per token row) adds one wrong row
// and the ×2 upsampling doubles what came from before, so after the last stage 2^S − 1 = P − 1 rows are wrong (the
// stem on the image adds 1, the last fuse 1 more: 2 ≤ P); all of them lie in the P pixel rows of the context row,
// which are cropped. At the image borders there is no context row and the zero padding is the true one.
torch::Tensor UnetrDecoderImpl::decode_in_chunks(const std::vector<torch::Tensor>& grids, const torch::Tensor& image,
                                              const UniformBands& bands, const dist::CommPtr& comm) const {
  const int64_t rows = bands.rows(), P = options_.patch, K = static_cast<int64_t>(grids.size());
  // The context rows from the neighbouring bands: one halo exchange of [first row, last row] of every grid (and of
  // P image rows) returns [previous band's last row, first, last, next band's first row]; zeros at the image borders
  // are dropped (no context there).
  std::vector<torch::Tensor> band_prev(grids.size()), band_next(grids.size());
  torch::Tensor image_prev = image.narrow(2, 0, 0), image_next = image.narrow(2, 0, 0);
  for (int64_t k = 0; k < K; ++k) band_prev[k] = band_next[k] = grids[k].narrow(2, 0, 0);
  if (comm != nullptr && comm->size() > 1) {
    std::vector<torch::Tensor> ends;
    for (const auto& g : grids) ends.push_back(torch::cat({g.narrow(2, 0, 1), g.narrow(2, rows - 1, 1)}, 2));
    auto halos = dist::halo_exchange(torch::cat(ends, 1), comm, 2, 1).chunk(K, 1);
    torch::Tensor image_halos;
    {
      torch::NoGradGuard no_grad;  // the image needs no gradient
      image_halos = dist::halo_exchange(torch::cat({image.narrow(2, 0, P), image.narrow(2, image.size(2) - P, P)}, 2),
                                        comm, 2, P);
    }
    const bool first = bands.rank == 0, last = bands.rank + 1 == static_cast<int>(bands.band_rows.size());
    for (int64_t k = 0; k < K; ++k) {
      if (!first) band_prev[k] = halos[k].narrow(2, 0, 1);
      if (!last) band_next[k] = halos[k].narrow(2, 3, 1);
    }
    if (!first) image_prev = image_halos.narrow(2, 0, P);
    if (!last) image_next = image_halos.narrow(2, 3 * P, P);
  }
  // Chunks of the band: one split per grid (its backward is one concatenation, not one full-size gradient per chunk).
  std::vector<int64_t> sizes;
  for (int64_t r = 0; r < rows; r += options_.chunk_rows) {
    sizes.push_back(std::min(options_.chunk_rows, rows - r));
  }
  const auto n = static_cast<int64_t>(sizes.size());
  std::vector<std::vector<torch::Tensor>> pieces;
  for (const auto& g : grids) pieces.push_back(g.split_with_sizes(sizes, 2));
  std::vector<int64_t> pixel_sizes;
  for (auto size : sizes) pixel_sizes.push_back(size * P);
  const auto image_pieces = image.split_with_sizes(pixel_sizes, 2);

  const auto weights = this->weights();
  // inputs: image [previous context, chunk, next context], then the same three for every grid.
  FunctionalBlock decode_chunk = [this, K, P](const std::vector<torch::Tensor>& in, const std::vector<torch::Tensor>& w) {
    std::vector<torch::Tensor> chunk_grids;
    for (int64_t k = 0; k < K; ++k) chunk_grids.push_back(torch::cat({in[3 + 3 * k], in[4 + 3 * k], in[5 + 3 * k]}, 2));
    const auto logits = decode(chunk_grids, torch::cat({in[0], in[1], in[2]}, 2), nullptr, w);
    if (in[3].size(2) == 0 && in[5].size(2) == 0) return logits;
    // The chunk's own rows, as a tensor of their own (a view would keep the context rows alive).
    return logits.narrow(2, in[3].size(2) * P, in[4].size(2) * P).contiguous();
  };
  const auto last_rows = [](const torch::Tensor& piece, int64_t count) {
    return piece.narrow(2, piece.size(2) - count, count);
  };
  std::vector<torch::Tensor> outputs;
  for (int64_t c = 0; c < n; ++c) {
    std::vector<torch::Tensor> in{c == 0 ? image_prev : last_rows(image_pieces[c - 1], P), image_pieces[c],
                                  c + 1 == n ? image_next : image_pieces[c + 1].narrow(2, 0, P)};
    for (int64_t k = 0; k < K; ++k) {
      in.push_back(c == 0 ? band_prev[k] : last_rows(pieces[k][c - 1], 1));
      in.push_back(pieces[k][c]);
      in.push_back(c + 1 == n ? band_next[k] : pieces[k][c + 1].narrow(2, 0, 1));
    }
    const bool recompute = torch::GradMode::is_enabled();
    outputs.push_back(recompute ? checkpoint_functional(decode_chunk, in, weights) : decode_chunk(in, weights));
  }
  return n == 1 ? outputs[0] : torch::cat(outputs, 2);
}

}  // namespace spvit::model

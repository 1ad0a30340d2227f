// The decoders without gathering: halo-exchange convolutions equal the undivided convolution (including band
// borders and uneven bands), and a whole segmentation step — encoder (grid or coordinate positional encoding) + UNETR
// decoder (2D and 3D) or tile decoder, CE + Dice loss, double gradient averaging — equals the single-process step,
// also when decoding in chunks.
#include <gtest/gtest.h>

#include "dist/mpi_test_grid.h"
#include "spvit/dist/collectives.h"
#include "spvit/dist/gradient_averager.h"
#include "spvit/model/halo_conv.h"
#include "spvit/model/segmenter.h"
#include "spvit/train/losses.h"

namespace spvit::model {
namespace {

double rel_err(const torch::Tensor& a, const torch::Tensor& ref) {
  const double scale = ref.abs().max().item<double>();
  const double diff = testing::max_abs_diff(a, ref);
  return scale > 0 ? diff / scale : diff;
}

double max_over_world(double value) {
  auto t = torch::full({1}, value, torch::kFloat64);
  testing::test_grid().world()->all_reduce(t, dist::ReduceOp::Max)->wait();
  return t.item<double>();
}

// Rows of a band split where rank r gets 1 + (r % 3) rows: uneven on purpose.
std::vector<int64_t> uneven_rows(int n) {
  std::vector<int64_t> rows;
  for (int r = 0; r < n; ++r) rows.push_back(1 + r % 3);
  return rows;
}

void check_halo_conv(int spatial_dims, int64_t kernel, std::vector<int64_t> rows) {
  const auto& grid = testing::test_grid();
  const int s = grid.seq_index();
  int64_t total = 0, offset = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (static_cast<int>(r) < s) offset += rows[r];
    total += rows[r];
  }
  torch::manual_seed(11);
  HaloConv conv(3, 4, kernel, spatial_dims);
  conv->to(torch::kFloat64);
  std::vector<int64_t> shape{2, 3, total, 5};
  if (spatial_dims == 3) shape.push_back(4);
  auto full = torch::randn(shape, torch::kFloat64);
  auto band = full.narrow(2, offset, rows[s]).clone().requires_grad_(true);
  auto out = conv->forward(band, grid.seq());
  auto out_w = torch::randn(out.sizes(), torch::kFloat64);  // arbitrary upstream gradient, per rank
  (out * out_w).sum().backward();
  auto band_grad = band.grad().clone();
  auto weight_grad = conv->named_parameters()["weight"].grad().clone();
  // Reference: the undivided convolution with the gathered upstream gradients.
  auto all_w = dist::all_gather_rows(*grid.seq(), out_w.transpose(0, 2).contiguous(), rows).transpose(0, 2);
  conv->zero_grad();
  auto full_in = full.clone().requires_grad_(true);
  auto ref = conv->forward(full_in, nullptr);
  (ref * all_w).sum().backward();
  grid.seq()->all_reduce(weight_grad)->wait();
  EXPECT_LT(max_over_world(rel_err(out, ref.narrow(2, offset, rows[s]))), 1e-12);
  EXPECT_LT(max_over_world(rel_err(band_grad, full_in.grad().narrow(2, offset, rows[s]))), 1e-12);
  EXPECT_LT(max_over_world(rel_err(weight_grad, conv->named_parameters()["weight"].grad())), 1e-12);
}

TEST(HaloConv, EqualsUndividedConv2D) { check_halo_conv(2, 3, uneven_rows(testing::test_grid().seq_size())); }
TEST(HaloConv, EqualsUndividedConv3D) { check_halo_conv(3, 3, uneven_rows(testing::test_grid().seq_size())); }
TEST(HaloConv, WideKernel) {
  std::vector<int64_t> rows(static_cast<size_t>(testing::test_grid().seq_size()), 2);
  rows[0] = 3;
  check_halo_conv(2, 5, rows);
}

SegmenterOptions small_segmenter(int spatial_dims, const std::string& decoder, int64_t tokens) {
  SegmenterOptions o;
  o.encoder.dim = 16;
  o.encoder.depth = 2;
  o.encoder.heads = 2;
  o.encoder.mlp_ratio = 2;
  o.encoder.max_tokens = tokens;
  o.encoder.coord_features = spatial_dims + 1;
  o.encoder.pos_encoding = decoder == "tile" ? PositionalEncodingKind::Coords : PositionalEncodingKind::Grid;
  o.channels = 2;
  o.patch = 4;
  o.spatial_dims = spatial_dims;
  o.classes = 3;
  o.decoder = decoder;
  o.decoder_width = 4;
  int64_t patch_numel = 1;
  for (int d = 0; d < spatial_dims; ++d) patch_numel *= o.patch;
  o.encoder.in_features = o.channels * patch_numel;
  return o;
}

// Builds the model for `strategy` with parameters identical on every rank and to the reference.
Segmenter build(SegmenterOptions o, AttentionStrategy strategy) {
  o.encoder.attention = strategy;
  torch::manual_seed(21);
  Segmenter m(o);
  m->to(torch::kFloat64);
  return m;
}

// decoder_chunk_rows > 0: the distributed model decodes in checkpointed chunks; the reference never does.
// pos: the encoder's positional encoding (coords: each band supplies its tokens' global coordinates).
void check_uniform_step(int spatial_dims, std::vector<int64_t> image_shape, int64_t decoder_chunk_rows = 0,
                        PositionalEncodingKind pos = PositionalEncodingKind::Grid) {
  const auto& grid = testing::test_grid();
  int64_t pixels = 1;
  for (auto side : image_shape) pixels *= side;
  const auto probe = UniformBands::even(image_shape, 4, 1, 0);
  auto opts = small_segmenter(spatial_dims, "unetr", probe.num_tokens());
  opts.encoder.pos_encoding = pos;
  auto chunked = opts;
  chunked.decoder_chunk_rows = decoder_chunk_rows;
  auto model = build(chunked, AttentionStrategy::LssKv);
  auto reference = build(opts, AttentionStrategy::Local);
  auto sample = [&](int d) {
    torch::manual_seed(500 + d);
    std::vector<int64_t> shape{1, opts.channels};
    shape.insert(shape.end(), image_shape.begin(), image_shape.end());
    auto image = torch::randn(shape, torch::kFloat64);
    std::vector<int64_t> mshape{1};
    mshape.insert(mshape.end(), image_shape.begin(), image_shape.end());
    return std::make_pair(image, torch::randint(0, opts.classes, mshape, torch::kLong));
  };
  const auto bands = UniformBands::even(image_shape, 4, grid.seq_size(), grid.seq_index());
  const int64_t y0 = bands.pixel_begin()[0], h = bands.pixel_end()[0] - y0;
  auto [image, mask] = sample(grid.data_index());
  dist::GradientAverager averager(model->parameters(), grid.world(), grid.seq(), grid.data(), {});
  auto logits = model->forward_uniform(image.narrow(2, y0, h), bands, grid.seq());
  auto loss = train::segmentation_loss(logits, mask.narrow(1, y0, h), double(pixels), grid.seq()).total;
  loss.backward();
  averager.finish();

  torch::Tensor ref_logits, ref_loss;
  for (int g = 0; g < grid.data_size(); ++g) {
    auto [img, msk] = sample(g);
    auto l = reference->forward_uniform(img, probe, nullptr);
    auto lo = train::segmentation_loss(l, msk, double(pixels), nullptr).total;
    (lo / grid.data_size()).backward();
    if (g == grid.data_index()) {
      ref_logits = l.detach();
      ref_loss = lo.detach();
    }
  }
  auto total = loss.detach().clone().reshape({1});
  grid.seq()->all_reduce(total)->wait();
  EXPECT_LT(max_over_world(rel_err(logits.detach(), ref_logits.narrow(2, y0, h))), 1e-10);
  EXPECT_LT(max_over_world(rel_err(total, ref_loss.reshape({1}))), 1e-10);
  {
    torch::NoGradGuard no_grad;  // evaluation and inference: chunks decoded without the checkpoint
    auto again = model->forward_uniform(image.narrow(2, y0, h), bands, grid.seq());
    EXPECT_LT(max_over_world(rel_err(again, ref_logits.narrow(2, y0, h))), 1e-10);
  }
  auto p = model->named_parameters(), q = reference->named_parameters();
  double worst = 0;
  std::string worst_name;
  for (const auto& item : p) {
    const double e = rel_err(item.value().grad(), q[item.key()].grad());
    if (e > worst) worst = e, worst_name = item.key();
  }
  EXPECT_LT(max_over_world(worst), 1e-10) << "worst gradient: " << worst_name;
}

TEST(SegmenterStep, Unetr2DMatchesSingleProcess) { check_uniform_step(2, {24, 16}); }
TEST(SegmenterStep, Unetr3DMatchesSingleProcess) { check_uniform_step(3, {16, 8, 8}); }
// 6 token rows: chunks of 1 and of 2 rows (2+1 on a band of 3, one chunk on a band of 1), every chunk border and band
// border; the GradientAverager's hooks must see each decoder parameter once although every chunk uses it.
TEST(SegmenterStep, UnetrChunkedDecoderMatchesSingleProcess) {
  check_uniform_step(2, {24, 16}, 1);
  check_uniform_step(2, {24, 16}, 2);
}
TEST(SegmenterStep, Unetr3DChunkedDecoderMatchesSingleProcess) { check_uniform_step(3, {16, 8, 8}, 1); }
// The coordinate positional encoding on uniform bands (2D, 3D, chunked): outputs, loss and gradients, including those
// of the coordinate MLP, equal the single process's, so every band encodes the global coordinates of its tokens.
TEST(SegmenterStep, UnetrCoords2DMatchesSingleProcess) {
  check_uniform_step(2, {24, 16}, 0, PositionalEncodingKind::Coords);
}
TEST(SegmenterStep, UnetrCoords3DMatchesSingleProcess) {
  check_uniform_step(3, {16, 8, 8}, 0, PositionalEncodingKind::Coords);
}
TEST(SegmenterStep, UnetrCoordsChunkedDecoderMatchesSingleProcess) {
  check_uniform_step(2, {24, 16}, 2, PositionalEncodingKind::Coords);
}

TEST(SegmenterStep, TileDecoderMatchesSingleProcess) {
  const auto& grid = testing::test_grid();
  const int64_t L = 37;
  auto opts = small_segmenter(2, "tile", L);
  auto model = build(opts, AttentionStrategy::LssKv);
  auto reference = build(opts, AttentionStrategy::Local);
  auto sample = [&](int d) {
    torch::manual_seed(900 + d);
    auto tokens = torch::randn({1, L, opts.encoder.in_features}, torch::kFloat64);
    auto coords = torch::rand({L, 3}, torch::kFloat64);
    auto target = torch::randint(0, opts.classes, {1, L, 4, 4}, torch::kLong);
    auto weight = torch::rand({1, L, 4, 4}, torch::kFloat64);  // leaf areas in a real layout
    return std::make_tuple(tokens, coords, target, weight);
  };
  const auto shard = dist::SequenceShard::even(L, grid.seq_size(), grid.seq_index());
  const int64_t off = shard.offset(), n = shard.local_length();
  auto [tokens, coords, target, weight] = sample(grid.data_index());
  dist::GradientAverager averager(model->parameters(), grid.world(), grid.seq(), grid.data(), {});
  SequenceContext seq{grid.seq(), shard, {}};
  auto tiles = model->forward_tiles(tokens.narrow(1, off, n), {{}, coords.narrow(0, off, n)}, seq);
  // Tiles [B, L_s, K, P, P] -> per-pixel layout [B, K, L_s, P, P] for the loss.
  auto logits = tiles.permute({0, 2, 1, 3, 4});
  const double pixels = L * 16;
  auto loss = train::segmentation_loss(logits, target.narrow(1, off, n), pixels, grid.seq(), {},
                                       weight.narrow(1, off, n)).total;
  loss.backward();
  averager.finish();
  for (int g = 0; g < grid.data_size(); ++g) {
    auto [tk, co, tg, wt] = sample(g);
    auto t = reference->forward_tiles(tk, {{}, co}, SequenceContext::whole(L)).permute({0, 2, 1, 3, 4});
    (train::segmentation_loss(t, tg, pixels, nullptr, {}, wt).total / grid.data_size()).backward();
  }
  auto p = model->parameters(), q = reference->parameters();
  double worst = 0;
  for (size_t i = 0; i < p.size(); ++i) worst = std::max(worst, rel_err(p[i].grad(), q[i].grad()));
  EXPECT_LT(max_over_world(worst), 1e-10);
}

// Ignored pixels (label < 0) over a sequence group: the ranks' loss shares sum to the one-process loss and each
// rank's logit gradients are its rows of the one-process gradient (the annotated-pixel counts travel in the Dice
// all-reduce).
TEST(SegmentationLoss, IgnoredPixelsOverTheSequenceGroupEqualOneProcess) {
  const auto& grid = testing::test_grid();
  torch::manual_seed(41);
  const int64_t B = 2, K = 3, H = 11, W = 5;
  const auto logits = torch::randn({B, K, H, W}, torch::kFloat64);
  auto target = torch::randint(0, K, {B, H, W}, torch::kLong);
  target.masked_fill_(torch::rand({B, H, W}) < 0.3, -1);  // ignored pixels, unevenly over the rows
  target[1].narrow(0, 0, 4).fill_(-1);                     // a rank may hold only ignored pixels of a sample
  train::LossOptions o;
  o.ignore_negative = true;
  const auto rows = dist::SequenceShard::even(H, grid.seq_size(), grid.seq_index());
  auto mine = logits.narrow(2, rows.offset(), rows.local_length()).clone().requires_grad_(true);
  auto share = train::segmentation_loss(mine, target.narrow(1, rows.offset(), rows.local_length()), H * W, grid.seq(), o);
  share.total.backward();
  auto whole = logits.clone().requires_grad_(true);
  auto ref = train::segmentation_loss(whole, target, H * W, nullptr, o);
  ref.total.backward();
  auto total = share.total.detach().reshape({1}).clone();
  grid.seq()->all_reduce(total, dist::ReduceOp::Sum)->wait();
  EXPECT_LT(max_over_world(rel_err(total, ref.total.detach().reshape({1}))), 1e-12);
  EXPECT_LT(max_over_world(rel_err(mine.grad(), whole.grad().narrow(2, rows.offset(), rows.local_length()))), 1e-12);
  EXPECT_EQ(whole.grad().masked_select(target.lt(0).unsqueeze(1).expand({B, K, H, W})).abs().max().item<double>(), 0.0)
      << "an ignored pixel's logits get no gradient";
}

}  // namespace
}  // namespace spvit::model

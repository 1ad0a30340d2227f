// Single-process model checks: attention against a brute-force float64 reference, checkpointing against the plain
// graph, and input validation.
#include <gtest/gtest.h>

#include <cmath>

#include "spvit/core/error.h"
#include "spvit/core/torch_compat.h"
#include "spvit/model/uniform_bands.h"
#include "spvit/model/vit_encoder.h"
#include "spvit/patch/extract.h"
#include "spvit/patch/patcher.h"
#include "test_support.h"

namespace spvit::model {
namespace {

torch::Tensor param(torch::nn::Module& m, const std::string& name) { return m.named_parameters()[name]; }

// softmax(q kᵀ/√d) v computed one query row at a time with explicit loops over keys.
torch::Tensor brute_force_attention(const torch::Tensor& h, torch::nn::Module& attn, int64_t heads,
                                    const torch::Tensor& key_valid) {
  const int64_t B = h.size(0), L = h.size(1), E = h.size(2), Dh = E / heads;
  auto qkv = torch::matmul(h, param(attn, "qkv.weight").t()) + param(attn, "qkv.bias");
  auto out = torch::zeros({B, L, E}, h.options());
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t hd = 0; hd < heads; ++hd) {
      auto q = qkv[b].narrow(1, hd * Dh, Dh), k = qkv[b].narrow(1, E + hd * Dh, Dh);
      auto v = qkv[b].narrow(1, 2 * E + hd * Dh, Dh);
      for (int64_t i = 0; i < L; ++i) {
        std::vector<double> scores;
        double top = -INFINITY;
        for (int64_t j = 0; j < L; ++j) {
          double s = key_valid[j].item<bool>() ? (q[i] * k[j]).sum().item<double>() / std::sqrt(double(Dh)) : -INFINITY;
          scores.push_back(s);
          top = std::max(top, s);
        }
        double total = 0;
        for (auto& s : scores) total += (s = std::exp(s - top));
        auto row = torch::zeros({Dh}, h.options());
        for (int64_t j = 0; j < L; ++j) row += v[j] * (scores[j] / total);
        out[b][i].narrow(0, hd * Dh, Dh).copy_(row);
      }
    }
  }
  return torch::matmul(out, param(attn, "proj.weight").t()) + param(attn, "proj.bias");
}

TEST(Attention, MatchesBruteForceWithMaskedKeys) {
  torch::manual_seed(3);
  MultiHeadAttention attn(AttentionOptions{16, 4, AttentionStrategy::Local, true});
  attn->to(torch::kFloat64);
  auto h = torch::randn({2, 9, 16}, torch::kFloat64);
  auto key_valid = torch::arange(9) < 7;  // two empty slots
  SequenceContext seq{nullptr, dist::SequenceShard::whole(9), key_valid};
  auto got = attn->forward(h, seq);
  auto want = brute_force_attention(h, *attn, 4, key_valid);
  EXPECT_LT(testing::max_abs_diff(got, want), 1e-12);
}

TEST(Attention, FusedKernelMatchesMathPath) {
  torch::manual_seed(4);
  auto q = torch::randn({1, 2, 33, 8}), k = torch::randn({1, 2, 33, 8}), v = torch::randn({1, 2, 33, 8});
  auto fused = compat::scaled_dot_product_attention(q, k, v, {}, true);
  auto math = compat::scaled_dot_product_attention(q, k, v, {}, false);
  EXPECT_LT(testing::max_abs_diff(fused, math), 1e-5);
}

// A small single-process encoder: 12 input features, width 16, 2 heads, local attention.
EncoderOptions small_local_encoder(int64_t depth, int64_t max_tokens) {
  EncoderOptions o;
  o.in_features = 12;
  o.dim = 16;
  o.depth = depth;
  o.heads = 2;
  o.max_tokens = max_tokens;
  o.attention = AttentionStrategy::Local;
  return o;
}

TEST(Encoder, CheckpointingGivesTheSameGradients) {
  auto o = small_local_encoder(/*depth=*/3, /*max_tokens=*/20);
  torch::manual_seed(5);
  auto tokens = torch::randn({2, 20, 12}, torch::kFloat64);
  TokenMetadata meta{torch::arange(20), {}};
  auto seq = SequenceContext::whole(20);
  std::vector<std::vector<torch::Tensor>> grads;
  for (bool ckpt : {false, true}) {
    torch::manual_seed(6);
    o.checkpointing = ckpt;
    ViTEncoder enc(o);
    enc->to(torch::kFloat64);
    auto x = tokens.clone().requires_grad_(true);
    enc->forward(x, meta, seq).pow(2).sum().backward();
    std::vector<torch::Tensor> g{x.grad()};
    for (auto& p : enc->parameters()) g.push_back(p.grad());
    grads.push_back(g);
  }
  ASSERT_EQ(grads[0].size(), grads[1].size());
  for (size_t i = 0; i < grads[0].size(); ++i) {
    ASSERT_TRUE(grads[1][i].defined()) << "gradient " << i << " missing with checkpointing";
    EXPECT_LT(testing::max_abs_diff(grads[0][i], grads[1][i]), 1e-12) << "gradient " << i;
  }
}

// Every parameter's gradient hook fires exactly once per backward with checkpointing, as without: the gradient
// averager reduces a bucket when its last hook fires, so a second call would double a gradient or come too late.
TEST(Encoder, CheckpointingFiresEachGradientHookOnce) {
  auto o = small_local_encoder(/*depth=*/2, /*max_tokens=*/10);
  for (bool ckpt : {false, true}) {
    o.checkpointing = ckpt;
    torch::manual_seed(2);
    ViTEncoder enc(o);
    auto params = enc->parameters();
    std::vector<int> calls(params.size(), 0);
    for (size_t k = 0; k < params.size(); ++k) params[k].register_hook([&calls, k](const torch::Tensor&) { ++calls[k]; });
    auto x = torch::randn({1, 10, 12}).requires_grad_(true);
    enc->forward(x, TokenMetadata{torch::arange(10), {}}, SequenceContext::whole(10)).sum().backward();
    for (size_t k = 0; k < params.size(); ++k) EXPECT_EQ(calls[k], 1) << "parameter " << k << ", checkpointing " << ckpt;
    ASSERT_TRUE(x.grad().defined());
  }
}

TEST(Encoder, RejectsBadInputs) {
  EncoderOptions o;
  o.in_features = 12;
  o.dim = 16;
  o.depth = 1;
  o.heads = 2;
  o.max_tokens = 10;
  o.attention = AttentionStrategy::Local;
  ViTEncoder enc(o);
  auto seq = SequenceContext::whole(12);
  try {
    enc->forward(torch::randn({1, 12, 12}), {torch::arange(12), {}}, seq);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the positional table (10 rows)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(enc->forward(torch::randn({1, 12, 13}), {torch::arange(12), {}}, seq), Error);
  EXPECT_THROW(MultiHeadAttention(AttentionOptions{10, 3, AttentionStrategy::Local, true}), Error);
}

// The uniform bands give the coordinate encoding the coordinates the tile path computes for the same grid
// (patch::token_metadata of the raster-ordered uniform layout), bit for bit, and each band holds the global values
// of its own tokens, whatever the split: the normalisation does not depend on the rank or the number of ranks.
TEST(UniformBands, CoordinatesAreTheLayoutCoordinatesOfTheSameGrid) {
  const std::vector<std::vector<int64_t>> shapes{{24, 16}, {40, 8}, {16, 8, 12}, {12, 24, 8}};
  for (const auto& shape : shapes) {
    const int64_t P = 4;
    const int dims = static_cast<int>(shape.size());
    const auto layout = patch::UniformPatcher(dims, P, 0, patch::TokenOrder::Raster).plan_for_size(shape);
    const auto whole = UniformBands::even(shape, P, 1, 0);
    EXPECT_EQ(whole.root_side(), layout.root_side);
    EXPECT_TRUE(torch::equal(whole.token_coords(), patch::token_metadata(layout).coords)) << c10::IntArrayRef(shape);
    for (int ranks : {2, 3}) {
      std::vector<torch::Tensor> parts;
      for (int r = 0; r < ranks; ++r) {
        const auto band = UniformBands::even(shape, P, ranks, r);
        const auto shard = band.shard();
        const auto mine = patch::token_metadata(layout, shard.offset(), shard.offset() + shard.local_length());
        EXPECT_TRUE(torch::equal(band.token_coords(), mine.coords)) << c10::IntArrayRef(shape) << " rank " << r;
        EXPECT_TRUE(torch::equal(band.token_indices(), mine.index));
        parts.push_back(band.token_coords());
      }
      EXPECT_TRUE(torch::equal(torch::cat(parts), whole.token_coords()));
    }
  }
}

}  // namespace
}  // namespace spvit::model

// Each fused attention backend on CUDA against the math backend, forward and backward, at precision-appropriate
// tolerances (skips without a GPU or on LibTorch 1.x).
#include <gtest/gtest.h>

#include "spvit/core/torch_compat.h"

namespace spvit::compat {
namespace {

struct Result {
  torch::Tensor out, dq, dk, dv;
};

Result run(const std::string& backend, const torch::Tensor& q0, const torch::Tensor& k0, const torch::Tensor& v0,
           const torch::Tensor& grad) {
  set_attention_backend(backend);
  auto q = q0.detach().requires_grad_(true), k = k0.detach().requires_grad_(true), v = v0.detach().requires_grad_(true);
  auto out = compat::scaled_dot_product_attention(q, k, v, torch::Tensor());
  out.backward(grad);
  return {out.detach().to(torch::kFloat), q.grad().to(torch::kFloat), k.grad().to(torch::kFloat),
          v.grad().to(torch::kFloat)};
}

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

TEST(AttentionBackends, EveryFusedBackendMatchesMath) {
  if (!torch::cuda::is_available() || !SPVIT_TORCH_HAS_SDPA) GTEST_SKIP() << "needs CUDA LibTorch >= 2";
  torch::manual_seed(0);
  for (auto dtype : {torch::kBFloat16, torch::kHalf}) {
    auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
    // 12 heads of 64 (ViT-B), 1000 queries against 1000 keys: not a multiple of any tile size.
    auto q = torch::randn({1, 12, 1000, 64}, opts), k = torch::randn({1, 12, 1000, 64}, opts),
         v = torch::randn({1, 12, 1000, 64}, opts), grad = torch::randn({1, 12, 1000, 64}, opts);
    const auto reference = run("math", q.to(torch::kFloat), k.to(torch::kFloat), v.to(torch::kFloat),
                               grad.to(torch::kFloat));
    const double tolerance = dtype == torch::kBFloat16 ? 3e-2 : 5e-3;
    for (const std::string backend : {"cudnn", "flash", "efficient", "auto"}) {
      SCOPED_TRACE(backend + " " + c10::toString(dtype));
      Result r;
      try {
        r = run(backend, q, k, v, grad);
      } catch (const c10::Error& e) {
        ADD_FAILURE() << backend << " is not available here: " << e.what();
        continue;
      }
      EXPECT_LT(rel(r.out, reference.out), tolerance);
      EXPECT_LT(rel(r.dq, reference.dq), tolerance);
      EXPECT_LT(rel(r.dk, reference.dk), tolerance);
      EXPECT_LT(rel(r.dv, reference.dv), tolerance);
    }
  }
  set_attention_backend("auto");
}

// The ring strategy's fused blocks: output and log-sum-exp against float64 math on the same inputs, with Lq != Lk
// (blocks of uneven segments). Fails, not skips, on a CUDA LibTorch 2.x where the kernel is not found.
TEST(AttentionBackends, FusedAttentionReturnsTheLogSumExp) {
  if (!torch::cuda::is_available() || !SPVIT_TORCH_HAS_SDPA) GTEST_SKIP() << "needs CUDA LibTorch >= 2";
  torch::manual_seed(1);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
    auto q = torch::randn({2, 3, 251, 16}, opts), k = torch::randn({2, 3, 250, 16}, opts),
         v = torch::randn({2, 3, 250, 16}, opts);
    const auto fused = fused_attention_with_lse(q, k, v);
    ASSERT_TRUE(fused.has_value()) << "the fused kernel with log-sum-exp was not found or refused the input";
    const auto q64 = q.to(torch::kFloat64).cpu(), k64 = k.to(torch::kFloat64).cpu(), v64 = v.to(torch::kFloat64).cpu();
    const auto scores = torch::matmul(q64, k64.transpose(-2, -1)) / std::sqrt(16.0);
    const auto lse = torch::logsumexp(scores, -1);
    const auto out = torch::matmul(torch::softmax(scores, -1), v64);
    const double tolerance = dtype == torch::kBFloat16 ? 3e-2 : 1e-5;
    EXPECT_EQ(fused->first.sizes(), q.sizes());
    EXPECT_EQ(fused->second.sizes(), (std::vector<int64_t>{2, 3, 251}));
    EXPECT_LT(rel(fused->first.to(torch::kFloat64).cpu(), out), tolerance);
    EXPECT_LT(rel(fused->second.to(torch::kFloat64).cpu(), lse), tolerance);
  }
  // float64 and the CPU are the math path's: no fused result.
  EXPECT_FALSE(fused_attention_with_lse(torch::randn({1, 1, 4, 8}, torch::kFloat64),
                                        torch::randn({1, 1, 4, 8}, torch::kFloat64),
                                        torch::randn({1, 1, 4, 8}, torch::kFloat64)).has_value());
}

}  // namespace
}  // namespace spvit::compat

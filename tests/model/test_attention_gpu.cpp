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

}  // namespace
}  // namespace spvit::compat

// Fused K‖V pack/unpack: the LibTorch-op versions against plain-loop float64 references, the differentiable fused
// path against the view path (values and gradients, through an uneven simulated all-gather), and the CUDA kernels
// against the CPU versions (odd sizes, misaligned buffers, every dtype).
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "spvit/core/error.h"
#include "spvit/kernels/kv_pack.h"

namespace spvit::kernels {
namespace {

using testing::max_abs_diff;
using testing::seeded;

struct Case {
  int64_t B, T, H, D;
};
// D = 5 and 1: no 16-byte packs; D = 8, 16: packs for some or all dtypes; T = 1 and B = 1 edges.
const Case kCases[] = {{2, 5, 3, 5}, {1, 1, 1, 1}, {3, 7, 2, 8}, {2, 4, 4, 16}};

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

// ---- plain-loop references: q[b,h,t,d] = qkv[b,t,hD+d], kv[t,j,b,e] = qkv[b,t,(1+j)E+e]

QkvSplit split_reference(const torch::Tensor& qkv, int64_t H) {
  const int64_t B = qkv.size(0), T = qkv.size(1), E = qkv.size(2) / 3, D = E / H;
  auto q = torch::zeros({B, H, T, D}, kF64), kv = torch::zeros({T, 2, B, E}, kF64);
  auto in = qkv.accessor<double, 3>();
  auto qa = q.accessor<double, 4>();
  auto kva = kv.accessor<double, 4>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < 3 * E; ++c) {
        const int64_t part = c / E, e = c % E;
        if (part == 0) qa[b][e / D][t][e % D] = in[b][t][c];
        else kva[t][part - 1][b][e] = in[b][t][c];
      }
  return {q, kv};
}

std::pair<torch::Tensor, torch::Tensor> unpack_reference(const torch::Tensor& gathered, int64_t H) {
  const int64_t L = gathered.size(0), B = gathered.size(2), E = gathered.size(3), D = E / H;
  torch::Tensor out[2] = {torch::zeros({B, H, L, D}, kF64), torch::zeros({B, H, L, D}, kF64)};
  auto g = gathered.accessor<double, 4>();
  for (int j = 0; j < 2; ++j) {
    auto o = out[j].accessor<double, 4>();
    for (int64_t t = 0; t < L; ++t)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t e = 0; e < E; ++e) o[b][e / D][t][e % D] = g[t][j][b][e];
  }
  return {out[0], out[1]};
}

torch::Tensor merge_reference(const torch::Tensor& dq, const torch::Tensor& dkv, const torch::Tensor& initial) {
  auto out = initial.clone();
  const int64_t B = out.size(0), T = out.size(1), E = out.size(2) / 3, D = E / dq.size(1);
  auto o = out.accessor<double, 3>();
  auto qa = dq.accessor<double, 4>();
  auto kva = dkv.accessor<double, 4>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < 3 * E; ++c) {
        const int64_t part = c / E, e = c % E;
        o[b][t][c] += part == 0 ? qa[b][e / D][t][e % D] : kva[t][part - 1][b][e];
      }
  return out;
}

TEST(KvPack, SplitMatchesLoopReference) {
  for (const auto& c : kCases) {
    const auto qkv = seeded({c.B, c.T, 3 * c.H * c.D}, 1, kF64);
    const auto got = split_qkv(qkv, c.H);
    const auto want = split_reference(qkv, c.H);
    EXPECT_EQ(max_abs_diff(got.q, want.q), 0.0) << "D " << c.D;
    EXPECT_EQ(max_abs_diff(got.kv, want.kv), 0.0) << "D " << c.D;
    EXPECT_TRUE(got.q.is_contiguous() && got.kv.is_contiguous());
  }
}

TEST(KvPack, UnpackMatchesLoopReference) {
  for (const auto& c : kCases) {
    const auto gathered = seeded({c.T + 3, 2, c.B, c.H * c.D}, 2, kF64);
    const auto [k, v] = unpack_kv(gathered, c.H);
    const auto [k_want, v_want] = unpack_reference(gathered, c.H);
    EXPECT_EQ(max_abs_diff(k, k_want), 0.0);
    EXPECT_EQ(max_abs_diff(v, v_want), 0.0);
  }
}

TEST(KvPack, PackGradIsTheAdjointOfUnpack) {
  // <unpack(g), (dk, dv)> = <g, pack(dk, dv)> for all g, dk, dv; and a missing dv is a zero gradient.
  for (const auto& c : kCases) {
    const int64_t L = c.T + 2, E = c.H * c.D;
    const auto g = seeded({L, 2, c.B, E}, 3, kF64);
    const auto dk = seeded({c.B, c.H, L, c.D}, 4, kF64), dv = seeded({c.B, c.H, L, c.D}, 5, kF64);
    const auto [k, v] = unpack_kv(g, c.H);
    const double lhs = ((k * dk).sum() + (v * dv).sum()).item<double>();
    const double rhs = (g * pack_kv_grad(dk, dv)).sum().item<double>();
    EXPECT_NEAR(lhs, rhs, 1e-12 * (1.0 + std::abs(lhs)));
    const auto k_only = pack_kv_grad(dk, torch::Tensor());
    EXPECT_EQ(k_only.select(1, 1).abs().max().item<double>(), 0.0);
    EXPECT_EQ(max_abs_diff(k_only.select(1, 0), pack_kv_grad(dk, dv).select(1, 0)), 0.0);
  }
}

TEST(KvPack, MergeGradMatchesLoopReference) {
  for (const auto& c : kCases) {
    const int64_t E = c.H * c.D;
    const auto dq = seeded({c.B, c.H, c.T, c.D}, 6, kF64), dkv = seeded({c.T, 2, c.B, E}, 7, kF64);
    const auto initial = seeded({c.B, c.T, 3 * E}, 8, kF64);
    auto written = torch::full({c.B, c.T, 3 * E}, 42.0, kF64);
    merge_qkv_grad(dq, dkv, written, /*accumulate=*/false);
    EXPECT_EQ(max_abs_diff(written, merge_reference(dq, dkv, torch::zeros_like(initial))), 0.0);
    auto added = initial.clone();
    merge_qkv_grad(dq, dkv, added, /*accumulate=*/true);
    EXPECT_LT(max_abs_diff(added, merge_reference(dq, dkv, initial)), 1e-15);
    merge_qkv_grad(torch::Tensor(), dkv, written, /*accumulate=*/false);  // no dq: zeros in the q columns
    EXPECT_EQ(max_abs_diff(written, merge_reference(torch::zeros_like(dq), dkv, torch::zeros_like(initial))), 0.0);
  }
}

TEST(KvPack, FusedPathEqualsViewPathWithGradients) {
  // qkv -> (q, send buffer) -> a simulated uneven all-gather (2 rows of other ranks before, 3 after) -> (k, v) ->
  // a loss touching q, k and v: the fused autograd functions must give the view path's values and gradients.
  for (const auto& c : kCases) {
    const int64_t E = c.H * c.D;
    const auto before = seeded({2, 2, c.B, E}, 9, kF64), after = seeded({3, 2, c.B, E}, 10, kF64);
    const auto wq = seeded({c.B, c.H, c.T, c.D}, 11, kF64);
    const auto wk = seeded({c.B, c.H, c.T + 5, c.D}, 12, kF64), wv = seeded({c.B, c.H, c.T + 5, c.D}, 13, kF64);
    torch::Tensor values[2][3], grads[2];
    const KvPath paths[2] = {KvPath::Views, KvPath::Fused};
    for (int p = 0; p < 2; ++p) {
      auto qkv = seeded({c.B, c.T, 3 * E}, 14, kF64).requires_grad_(true);
      const auto split = split_qkv_for_gather(qkv, c.H, paths[p]);
      EXPECT_TRUE(split.kv.is_contiguous()) << "the send buffer must be contiguous";
      const auto gathered = torch::cat({before, split.kv, after}, 0);
      const auto [k, v] = unpack_gathered_kv(gathered, c.H, paths[p]);
      ((split.q * wq).sum() + (k * wk).sum() + (v * wv).sum()).backward();
      values[p][0] = split.q.detach();
      values[p][1] = k.detach();
      values[p][2] = v.detach();
      grads[p] = qkv.grad();
    }
    for (int i = 0; i < 3; ++i) EXPECT_EQ(max_abs_diff(values[0][i], values[1][i]), 0.0) << "output " << i;
    EXPECT_EQ(max_abs_diff(grads[0], grads[1]), 0.0);
    EXPECT_GT(grads[1].abs().sum().item<double>(), 0.0);
  }
}

TEST(KvPack, ShapeErrorsNameTheProblem) {
  try {
    split_qkv(torch::zeros({1, 2, 10}, kF64), 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[B, L_s, 3E]"), std::string::npos) << e.what();
  }
  try {
    unpack_kv(torch::zeros({4, 2, 1, 9}, kF64), 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("E = 9 is not a multiple of 2 heads"), std::string::npos) << e.what();
  }
}

// ---- CUDA kernels against the CPU versions (copies are exact in every dtype; accumulation is float arithmetic)

TEST(KvPackCuda, KernelsEqualCpuVersions) {
  SPVIT_SKIP_WITHOUT_CUDA();
  std::vector<Case> cases(std::begin(kCases), std::end(kCases));
  cases.push_back({2, 9, 12, 64});  // ViT-B heads: 16-byte packs in every dtype
  for (auto dtype : {torch::kFloat32, torch::kFloat16, torch::kBFloat16}) {
    const auto on_gpu = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
    for (const auto& c : cases) {
      for (int64_t offset : {0, 1}) {  // offset 1: misaligned buffers take the scalar path
        const int64_t E = c.H * c.D, L = c.T + 4;
        SCOPED_TRACE(::testing::Message() << dtype << " B " << c.B << " T " << c.T << " H " << c.H << " D " << c.D
                                          << " offset " << offset);
        const auto qkv = seeded({c.B, c.T, 3 * E}, 20, on_gpu, offset);
        const auto gpu = split_qkv(qkv, c.H);
        const auto cpu = split_qkv(qkv.cpu(), c.H);
        EXPECT_EQ(max_abs_diff(gpu.q.cpu(), cpu.q), 0.0);
        EXPECT_EQ(max_abs_diff(gpu.kv.cpu(), cpu.kv), 0.0);

        const auto gathered = seeded({L, 2, c.B, E}, 21, on_gpu, offset);
        const auto [k, v] = unpack_kv(gathered, c.H);
        const auto [k_cpu, v_cpu] = unpack_kv(gathered.cpu(), c.H);
        EXPECT_EQ(max_abs_diff(k.cpu(), k_cpu), 0.0);
        EXPECT_EQ(max_abs_diff(v.cpu(), v_cpu), 0.0);

        const auto dk = seeded({c.B, c.H, L, c.D}, 22, on_gpu, offset);
        EXPECT_EQ(max_abs_diff(pack_kv_grad(dk, torch::Tensor()).cpu(), pack_kv_grad(dk.cpu(), torch::Tensor())), 0.0);

        const auto dq = seeded({c.B, c.H, c.T, c.D}, 23, on_gpu, offset);
        const auto dkv = seeded({c.T, 2, c.B, E}, 24, on_gpu, offset);
        for (bool accumulate : {false, true}) {
          auto out = seeded({c.B, c.T, 3 * E}, 25, on_gpu);
          auto want = out.cpu().to(torch::kFloat64);
          merge_qkv_grad(dq.cpu().to(torch::kFloat64), dkv.cpu().to(torch::kFloat64), want, accumulate);
          merge_qkv_grad(dq, dkv, out, accumulate);
          EXPECT_LE(max_abs_diff(out.cpu(), want), testing::tolerance(dtype, 8.0)) << "accumulate " << accumulate;
        }
      }
    }
  }
}

TEST(KvPackCuda, FusedAutogradOnGpuEqualsViewPath) {
  SPVIT_SKIP_WITHOUT_CUDA();
  const Case c{2, 6, 4, 64};
  const int64_t E = c.H * c.D;
  const auto on_gpu = torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCUDA);
  const auto w = seeded({c.B, c.H, c.T, c.D}, 30, on_gpu);
  torch::Tensor grads[2];
  const KvPath paths[2] = {KvPath::Views, KvPath::Fused};
  for (int p = 0; p < 2; ++p) {
    auto qkv = seeded({c.B, c.T, 3 * E}, 31, on_gpu).requires_grad_(true);
    const auto split = split_qkv_for_gather(qkv, c.H, paths[p]);
    const auto [k, v] = unpack_gathered_kv(split.kv, c.H, paths[p]);
    ((split.q * w).sum() + (k * w * 2).sum() + (v * w * 3).sum()).backward();
    grads[p] = qkv.grad().cpu();
  }
  EXPECT_LE(max_abs_diff(grads[0], grads[1]), testing::tolerance(torch::kFloat32, 8.0));
}

}  // namespace
}  // namespace spvit::kernels

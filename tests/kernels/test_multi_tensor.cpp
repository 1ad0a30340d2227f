// Multi-tensor flatten/unflatten for gradient buckets: the LibTorch-op versions against element loops in float64,
// and the CUDA kernel against float64 results (odd sizes, misaligned slots, more tensors than one launch takes).
#include <gtest/gtest.h>

#include "kernel_test_util.h"
#include "spvit/core/error.h"
#include "spvit/kernels/multi_tensor.h"

namespace spvit::kernels {
namespace {

using testing::max_abs_diff;
using testing::seeded;

// Tensors of assorted shapes (odd sizes, a scalar, a matrix) and their bucket offsets, packed back to back with
// `gap` unused elements between them (gap 1 makes every other slot misaligned).
struct Bucket {
  std::vector<torch::Tensor> tensors;
  std::vector<int64_t> offsets;
  int64_t numel = 0;
};
Bucket make_bucket(torch::TensorOptions options, int count, int64_t gap, uint64_t seed) {
  const std::vector<std::vector<int64_t>> shapes = {{7}, {}, {3, 11}, {128}, {5, 4, 3}, {1}, {64, 9}, {33}};
  Bucket b;
  for (int i = 0; i < count; ++i) {
    const auto& shape = shapes[static_cast<size_t>(i) % shapes.size()];
    b.tensors.push_back(seeded(shape, seed + static_cast<uint64_t>(i), options));
    b.offsets.push_back(b.numel);
    b.numel += b.tensors.back().numel() + gap;
  }
  return b;
}

// Element-by-element reference of flatten_into in float64.
torch::Tensor flatten_reference(const Bucket& b, const torch::Tensor& initial, double scale, bool accumulate) {
  auto out = initial.to(torch::kCPU).to(torch::kFloat64).clone();
  auto o = out.accessor<double, 1>();
  for (size_t i = 0; i < b.tensors.size(); ++i) {
    const auto src = b.tensors[i].to(torch::kCPU).to(torch::kFloat64).reshape(-1);
    auto s = src.accessor<double, 1>();
    for (int64_t k = 0; k < src.numel(); ++k) {
      const int64_t at = b.offsets[i] + k;
      o[at] = (accumulate ? o[at] : 0.0) + scale * s[k];
    }
  }
  return out;
}

TEST(MultiTensor, FlattenMatchesLoopReference) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  for (int64_t gap : {0, 1}) {
    const auto b = make_bucket(f64, 8, gap, 1);
    for (bool accumulate : {false, true}) {
      for (double scale : {1.0, 0.25, -3.0}) {
        const auto initial = seeded({b.numel}, 99, f64);
        auto flat = initial.clone();
        flatten_into(b.tensors, flat, b.offsets, scale, accumulate);
        auto want = flatten_reference(b, initial, scale, accumulate);
        EXPECT_LT(max_abs_diff(flat, want), 1e-14) << "gap " << gap << " accumulate " << accumulate << " scale " << scale;
      }
    }
  }
}

TEST(MultiTensor, UnflattenIsTheReverseOfFlatten) {
  // flatten then unflatten with scale a, then b: every tensor comes back times a·b, the gaps are untouched.
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto b = make_bucket(f64, 200, 1, 2);  // more tensors than one CUDA launch takes
  auto flat = torch::full({b.numel}, 7.0, f64);
  flatten_into(b.tensors, flat, b.offsets, 0.5);
  std::vector<torch::Tensor> back;
  for (const auto& t : b.tensors) back.push_back(torch::full_like(t, -1.0));
  unflatten_from(flat, b.offsets, back, 4.0);
  for (size_t i = 0; i < back.size(); ++i) {
    ASSERT_EQ(back[i].sizes(), b.tensors[i].sizes());
    ASSERT_LT(max_abs_diff(back[i], b.tensors[i] * 2.0), 1e-14) << "tensor " << i;
    ASSERT_EQ(flat[b.offsets[i] + b.tensors[i].numel()].item<double>(), 7.0) << "gap after tensor " << i;
  }
  unflatten_from(flat, b.offsets, back, 1.0, /*accumulate=*/true);
  EXPECT_LT(max_abs_diff(back[3], b.tensors[3] * 2.5), 1e-14);
}

TEST(MultiTensor, ErrorsNameTheProblem) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto flat = torch::zeros({10}, f64);
  try {
    flatten_into({torch::ones({8}, f64)}, flat, {5});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor #0 (8 elements at offset 5) does not fit in the bucket of 10"),
              std::string::npos) << e.what();
  }
  EXPECT_THROW(multi_scaled_copy({torch::ones({3}, f64)}, {torch::ones({4}, f64)}), Error);
  EXPECT_THROW(multi_scaled_copy({torch::ones({3}, torch::kFloat32)}, {torch::ones({3}, f64)}), Error);
}

TEST(MultiTensorCuda, KernelEqualsFloat64Reference) {
  SPVIT_SKIP_WITHOUT_CUDA();
  for (auto dtype : {torch::kFloat32, torch::kFloat16, torch::kBFloat16}) {
    const auto on_gpu = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
    for (int64_t gap : {0, 1, 3}) {
      const auto b = make_bucket(on_gpu, 130, gap, 3);
      for (bool accumulate : {false, true}) {
        for (double scale : {1.0, 0.125}) {
          SCOPED_TRACE(::testing::Message() << dtype << " gap " << gap << " accumulate " << accumulate << " scale "
                                            << scale);
          const auto initial = seeded({b.numel}, 98, on_gpu);
          auto flat = initial.clone();
          flatten_into(b.tensors, flat, b.offsets, scale, accumulate);
          EXPECT_LE(max_abs_diff(flat.cpu(), flatten_reference(b, initial.cpu(), scale, accumulate)),
                    testing::tolerance(dtype, 8.0));
          std::vector<torch::Tensor> back;
          for (const auto& t : b.tensors) back.push_back(torch::zeros_like(t));
          unflatten_from(flat, b.offsets, back, 2.0);
          for (size_t i = 0; i < back.size(); ++i) {
            const auto want = 2.0 * flat.cpu().to(torch::kFloat64).narrow(0, b.offsets[i], b.tensors[i].numel());
            ASSERT_LE(max_abs_diff(back[i].cpu().reshape(-1), want), testing::tolerance(dtype, 16.0)) << "tensor " << i;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace spvit::kernels

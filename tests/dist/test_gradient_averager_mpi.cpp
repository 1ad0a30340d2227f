// Double gradient averaging: g = (1/N_d) Σ_d Σ_s g_{d,s}, flat and two-stage, with buckets launched during
// backward.
#include <gtest/gtest.h>

#include "mpi_test_grid.h"
#include "spvit/dist/gradient_averager.h"

namespace spvit::dist {
namespace {

// Parameters of assorted sizes; rank r's gradient for parameter k is coefficient(r, k), a known seeded tensor.
std::vector<torch::Tensor> make_params() {
  std::vector<torch::Tensor> ps;
  for (int64_t size : {3, 700, 5, 1200, 64}) ps.push_back(torch::zeros({size}, torch::kFloat64).requires_grad_(true));
  return ps;
}
torch::Tensor coefficient(int rank, size_t k, int64_t size) {
  torch::manual_seed(1000 * rank + static_cast<int64_t>(k));
  return torch::randn({size}, torch::kFloat64);
}

void check_average(GradientAverager::Mode mode, double bucket_mb, bool skip_last_param) {
  const auto& grid = testing::test_grid();
  auto params = make_params();
  GradientAverager averager(params, grid.world(), grid.seq(), grid.data(), {mode, bucket_mb});
  torch::Tensor loss = torch::zeros({}, torch::kFloat64);
  for (size_t k = 0; k + (skip_last_param ? 1 : 0) < params.size(); ++k) {
    loss = loss + (params[k] * coefficient(grid.world_rank(), k, params[k].numel())).sum();
  }
  loss.backward();
  averager.finish();
  for (size_t k = 0; k < params.size(); ++k) {
    auto expected = torch::zeros({params[k].numel()}, torch::kFloat64);
    if (!(skip_last_param && k + 1 == params.size())) {
      for (int r = 0; r < grid.world_size(); ++r) expected += coefficient(r, k, params[k].numel());
      expected /= grid.data_size();
    }
    ASSERT_TRUE(params[k].grad().defined());
    EXPECT_LT(testing::max_abs_diff(params[k].grad(), expected), 1e-12) << "parameter " << k;
  }
  if (averager.num_buckets() > 1 && !skip_last_param) {
    // Buckets complete during backward are reduced from the gradient hooks, not at the end.
    EXPECT_GT(averager.buckets_launched_during_backward(), 0);
  }
}

TEST(GradientAverager, FlatOneBucket) { check_average(GradientAverager::Mode::Flat, 25.0, false); }
TEST(GradientAverager, FlatManySmallBuckets) { check_average(GradientAverager::Mode::Flat, 0.005, false); }
TEST(GradientAverager, TwoStage) { check_average(GradientAverager::Mode::TwoStage, 0.005, false); }
TEST(GradientAverager, UnusedParameterGetsZero) { check_average(GradientAverager::Mode::TwoStage, 0.005, true); }

TEST(GradientAverager, AccumulatesOntoExistingGradients) {
  const auto& grid = testing::test_grid();
  auto p = torch::zeros({10}, torch::kFloat64).requires_grad_(true);
  p.mutable_grad() = torch::full({10}, 2.0, torch::kFloat64);  // e.g. from an earlier micro-batch
  GradientAverager averager({p}, grid.world(), grid.seq(), grid.data(), {GradientAverager::Mode::Flat, 25.0});
  (p * 3.0).sum().backward();
  averager.finish();
  // Every rank had 2 + 3; the sum over the world divided by N_d is 5 * N_s.
  EXPECT_DOUBLE_EQ(p.grad()[0].item<double>(), 5.0 * grid.seq_size());
}

}  // namespace
}  // namespace spvit::dist

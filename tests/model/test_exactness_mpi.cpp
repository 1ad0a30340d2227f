// The exactness matrix of docs/sequence-parallel.md ("What the tests prove"), run on the grid this binary was started
// with: sequence-parallel forward output, loss and every parameter gradient equal the single-process reference; exactly
// one all-gather per layer forward and one reduce-scatter per layer backward.
#include <gtest/gtest.h>

#include <tuple>

#include "dist/mpi_test_grid.h"
#include "spvit/model/selftest.h"

namespace spvit::model {
namespace {

SelftestOptions small_case() {
  SelftestOptions o;
  o.layers = 2;
  o.dim = 32;
  o.heads = 4;
  o.batch = 2;
  o.patch = 2;
  return o;
}

void check(const SelftestOptions& o) {
  const auto& grid = testing::test_grid();
  const auto r = run_sequence_parallel_selftest(grid, o);
  EXPECT_LE(r.max_rel_err_out, r.tolerance);
  EXPECT_LE(r.max_rel_err_loss, r.tolerance);
  EXPECT_LE(r.max_rel_err_grad, r.tolerance);
  EXPECT_GT(r.max_rel_err_grad + r.max_rel_err_out, -1.0);  // errors are real numbers (not NaN)
  if (grid.seq_size() > 1) {
    EXPECT_EQ(r.forward_all_gathers, o.layers) << "one fused all-gather per layer in forward";
    EXPECT_EQ(r.backward_reduce_scatters, o.layers) << "one fused reduce-scatter per layer in backward";
    EXPECT_EQ(r.backward_all_gathers, o.checkpointing ? o.layers : 0) << "the recompute re-gathers once per layer";
    EXPECT_EQ(r.other_seq_collectives, 0);
  } else {
    EXPECT_EQ(r.forward_all_gathers + r.backward_reduce_scatters, 0);
  }
}

// (length, strategy, checkpointing): 96 is divisible by 1..4 ranks, 97 by none of 2..4.
class Exactness : public ::testing::TestWithParam<std::tuple<int64_t, std::string, bool>> {};

TEST_P(Exactness, Float64MatchesSingleProcess) {
  auto o = small_case();
  std::tie(o.length, o.strategy, o.checkpointing) = GetParam();
  check(o);
}

INSTANTIATE_TEST_SUITE_P(Matrix, Exactness,
                         ::testing::Combine(::testing::Values(96, 97), ::testing::Values("lss-kv", "lss-x"),
                                            ::testing::Bool()));

TEST(ExactnessVariants, Float32) {
  auto o = small_case();
  o.length = 97;
  o.dtype = torch::kFloat32;
  check(o);
}

TEST(ExactnessVariants, CoordinateEncodingWithEmptySlots) {
  auto o = small_case();
  o.length = 101;
  o.pos_encoding = "coords";
  o.empty_tokens = 9;
  check(o);
}

TEST(ExactnessVariants, TwoStageAveragingWithSmallBuckets) {
  auto o = small_case();
  o.length = 97;
  o.grad_average = "two-stage";
  o.bucket_mb = 0.01;
  o.checkpointing = true;
  check(o);
}

}  // namespace
}  // namespace spvit::model

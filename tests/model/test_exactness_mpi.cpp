// The exactness matrix of docs/sequence-parallel.md ("What the tests prove"), run on the grid this binary was started
// with, for every sequence-parallel strategy: forward output, loss and every parameter gradient equal the
// single-process reference, and each layer issues exactly the collectives its strategy is defined by.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <tuple>
#include <vector>

#include "dist/mpi_test_grid.h"
#include "spvit/model/attention.h"
#include "spvit/model/selftest.h"
#include "strategy_cases.h"

namespace spvit::model {
namespace {

using dist::CollectiveOp;

SelftestOptions small_case() {
  SelftestOptions o;
  o.layers = 2;
  o.dim = 32;
  o.heads = 4;
  o.batch = 2;
  o.patch = 2;
  return o;
}

using testing_cases::with_strategy;
const auto& kStrategies = testing_cases::strategies();

using Calls = std::array<int64_t, static_cast<size_t>(CollectiveOp::kCount)>;
struct Expected {
  Calls forward{}, backward{};
};

void add(Calls& calls, CollectiveOp op, int64_t n) { calls[static_cast<size_t>(op)] += n; }

// Collectives per layer, by definition of each strategy (docs/sequence-parallel.md, "Strategies"), for a sequence
// group of n ranks. The checkpointing recompute repeats the forward's collectives in backward.
Expected per_layer(const SelftestOptions& o, int n) {
  Expected e;
  auto gather = [&](int ranks) {  // lss-kv / lss-x over `ranks`
    if (ranks < 2) return;
    add(e.forward, CollectiveOp::AllGather, 1);
    add(e.backward, CollectiveOp::ReduceScatter, 1);
    if (o.checkpointing) add(e.backward, CollectiveOp::AllGather, 1);
  };
  auto ulysses = [&](int ranks) {
    if (ranks < 2) return;
    add(e.forward, CollectiveOp::AllToAll, 2);
    add(e.backward, CollectiveOp::AllToAll, 2 + (o.checkpointing ? 2 : 0));
  };
  auto ring = [&](int ranks) {
    if (ranks < 2) return;
    add(e.forward, CollectiveOp::SendRecv, ranks - 1);
    add(e.backward, CollectiveOp::SendRecv, (ranks - 1) + ranks + (o.checkpointing ? ranks - 1 : 0));
  };
  if (o.strategy == "lss-kv" || o.strategy == "lss-x") gather(n);
  if (o.strategy == "ulysses") ulysses(n);
  if (o.strategy == "ring") ring(n);
  if (o.strategy == "hybrid") {
    const int u = static_cast<int>(o.ulysses_size);
    ulysses(u);
    if (o.hybrid_outer == "ring") {
      ring(n / u);
    } else {
      gather(n / u);
    }
  }
  return e;
}

void check(const SelftestOptions& o) {
  const auto& grid = testing::test_grid();
  const auto r = run_sequence_parallel_selftest(grid, o);
  EXPECT_LE(r.max_rel_err_out, r.tolerance);
  EXPECT_LE(r.max_rel_err_loss, r.tolerance);
  EXPECT_LE(r.max_rel_err_grad, r.tolerance);
  EXPECT_GT(r.max_rel_err_grad + r.max_rel_err_out, -1.0);  // errors are real numbers (not NaN)
  const auto layer = per_layer(o, grid.seq_size());
  for (size_t k = 0; k < layer.forward.size(); ++k) {
    const auto op = dist::op_name(static_cast<CollectiveOp>(k));
    EXPECT_EQ(r.forward.calls[k], o.layers * layer.forward[k]) << op << " in forward, strategy " << o.strategy;
    EXPECT_EQ(r.backward.calls[k], o.layers * layer.backward[k]) << op << " in backward, strategy " << o.strategy;
  }
}

// (length, strategy, checkpointing): 96 is divisible by 1..4 ranks, 97 by none of 2..4.
class Exactness : public ::testing::TestWithParam<std::tuple<int64_t, std::string, bool>> {};

TEST_P(Exactness, Float64MatchesSingleProcess) {
  auto o = small_case();
  std::string strategy;
  std::tie(o.length, strategy, o.checkpointing) = GetParam();
  check(with_strategy(o, strategy, testing::test_grid().seq_size()));
}

INSTANTIATE_TEST_SUITE_P(Matrix, Exactness,
                         ::testing::Combine(::testing::Values(int64_t{96}, int64_t{97}), ::testing::ValuesIn(kStrategies),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return testing_cases::test_name(std::get<1>(info.param) + "_L" +
                                                           std::to_string(std::get<0>(info.param)) +
                                                           (std::get<2>(info.param) ? "_checkpointing" : ""));
                         });

// The variants, for every strategy.
class ExactnessVariants : public ::testing::TestWithParam<std::string> {
 protected:
  SelftestOptions options() const {
    return with_strategy(small_case(), GetParam(), testing::test_grid().seq_size());
  }
};

TEST_P(ExactnessVariants, Float32) {
  auto o = options();
  o.length = 97;
  o.dtype = torch::kFloat32;
  check(o);
}

// Empty adaptive slots (masked keys), spread over the last ranks' segments.
TEST_P(ExactnessVariants, CoordinateEncodingWithEmptySlots) {
  auto o = options();
  o.length = 101;
  o.pos_encoding = "coords";
  o.empty_tokens = 40;
  check(o);
}

// 3 heads: not divisible by 2 or 4 sequence ranks (uneven Ulysses head groups; on 4 ranks one rank has none).
TEST_P(ExactnessVariants, HeadsNotDivisibleBySequenceRanks) {
  auto o = options();
  o.length = 97;
  o.heads = 3;
  o.dim = 24;
  o.checkpointing = true;
  check(o);
}

TEST_P(ExactnessVariants, TwoStageAveragingWithSmallBuckets) {
  auto o = options();
  o.length = 97;
  o.grad_average = "two-stage";
  o.bucket_mb = 0.01;
  o.checkpointing = true;
  check(o);
}

// Ring: the transfer of block t+1 is posted before block t's attention starts, at every step of every layer (the
// overlap itself needs a multi-GPU machine to measure; this proves the order that makes it possible).
TEST(RingOrder, NextBlockIsPostedBeforeTheCurrentBlocksAttention) {
  const int n = testing::test_grid().seq_size();
  auto o = small_case();
  o.length = 97;
  o.strategy = "ring";
  std::vector<std::string> log;
  set_ring_event_log(&log);
  const auto r = run_sequence_parallel_selftest(testing::test_grid(), o);
  set_ring_event_log(nullptr);
  EXPECT_TRUE(r.passed());
  if (n == 1) {
    EXPECT_TRUE(log.empty());  // one rank: the local attention, no ring
    return;
  }
  // Per layer: post 1, attend 0, wait 1, post 2, attend 1, wait 2, ..., attend n-1.
  std::vector<std::string> layer;
  for (int t = 0; t < n; ++t) {
    if (t + 1 < n) layer.push_back("post " + std::to_string(t + 1));
    layer.push_back("attend " + std::to_string(t));
    if (t + 1 < n) layer.push_back("wait " + std::to_string(t + 1));
  }
  std::vector<std::string> expected;
  // The encoder's layers, then the selftest's one-layer memory probe (SelftestResult::per_rank).
  for (int64_t l = 0; l < o.layers + 1; ++l) expected.insert(expected.end(), layer.begin(), layer.end());
  EXPECT_EQ(log, expected);
}

INSTANTIATE_TEST_SUITE_P(Strategies, ExactnessVariants, ::testing::ValuesIn(kStrategies),
                         [](const auto& info) { return testing_cases::test_name(info.param); });

}  // namespace
}  // namespace spvit::model

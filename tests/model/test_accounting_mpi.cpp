// The accounting of docs/sequence-parallel.md ("Counting bytes"), on the grid this binary was started with, for every
// strategy: the bytes each rank sends and receives per layer (from the communicator's counters) and the bytes one
// attention layer keeps for backward (measured by LiveMemoryProbe) equal the formulas of the docs, rank by rank.
//
// The formulas are restated here independently of the code that moves the data: token counts from the even split,
// head groups from "the first H mod U ranks get one more". Kept bytes are those of the explicit math attention
// (LibTorch 1.13, or any LibTorch with fused attention turned off), without a key mask.
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "dist/mpi_test_grid.h"
#include "spvit/dist/sequence_shard.h"
#include "spvit/model/selftest.h"
#include "strategy_cases.h"

namespace spvit::model {
namespace {

// The shape of one case, and where this rank sits in it.
struct Shape {
  int64_t B, E, H, D, L;
  int n;                        // sequence ranks
  std::vector<int64_t> tokens;  // L_r per sequence rank
  int64_t elem, acc;            // bytes per element of the compute and the ring's accumulator dtype
};

struct Bytes {
  int64_t forward_sent = 0, forward_received = 0, backward_sent = 0, backward_received = 0, kept = 0;
};

int64_t sum(const std::vector<int64_t>& v, size_t from = 0, size_t to = SIZE_MAX) {
  return std::accumulate(v.begin() + static_cast<std::ptrdiff_t>(from),
                         v.begin() + static_cast<std::ptrdiff_t>(std::min(to, v.size())), int64_t{0});
}

// Heads of position p in a Ulysses group of u ranks.
int64_t heads_of(int64_t H, int u, int p) { return H / u + (p < H % u ? 1 : 0); }

// The two all-to-alls of Ulysses over a group whose ranks hold `tokens`, this rank at position p (heads g of D each).
void add_ulysses(Bytes& b, const Shape& s, const std::vector<int64_t>& tokens, int p) {
  const int64_t g = heads_of(s.H, static_cast<int>(tokens.size()), p), c = tokens[static_cast<size_t>(p)];
  const int64_t group = sum(tokens);
  const int64_t sent = (3 * s.B * s.D * c * (s.H - g) + s.B * s.D * g * (group - c)) * s.elem;
  const int64_t received = (3 * s.B * s.D * g * (group - c) + s.B * s.D * c * (s.H - g)) * s.elem;
  b.forward_sent += sent;
  b.forward_received += received;
  b.backward_sent += received;  // the adjoint all-to-alls move the same blocks the other way
  b.backward_received += sent;
}

// lss-kv's gather of [k ‖ v] (width w = heads·D) over blocks `tokens`, this rank's block i; backward reduce-scatter.
void add_gather(Bytes& b, const Shape& s, const std::vector<int64_t>& tokens, size_t i, int64_t w) {
  const int64_t others = 2 * s.B * w * (sum(tokens) - tokens[i]) * s.elem;
  b.forward_sent += others;
  b.forward_received += others;
  b.backward_sent += others;
  b.backward_received += others;
}

// The ring over blocks `tokens` (width w), this rank's block i: forward N−1 shifts of K‖V; backward the same plus N
// shifts of the [dK ‖ dV] accumulators (accumulator dtype).
void add_ring(Bytes& b, const Shape& s, const std::vector<int64_t>& tokens, size_t i, int64_t w) {
  const size_t n = tokens.size();
  const int64_t all = sum(tokens), next = tokens[(i + 1) % n];
  const int64_t sent = 2 * s.B * w * (all - next) * s.elem, received = 2 * s.B * w * (all - tokens[i]) * s.elem;
  const int64_t accumulators = 2 * s.B * w * all * s.acc;
  b.forward_sent += sent;
  b.forward_received += received;
  b.backward_sent += sent + accumulators;
  b.backward_received += received + accumulators;
}

// Kept for backward, in elements of each dtype (docs: "Bytes kept for backward").
int64_t kept_math(const Shape& s, int64_t heads, int64_t queries, int64_t keys) {  // softmax probabilities
  return heads * s.B * queries * keys * s.elem;
}

Bytes expected(const SelftestOptions& o, const Shape& s, int rank) {
  Bytes b;
  const auto r = static_cast<size_t>(rank);
  const int64_t mine = s.tokens[r];
  const int64_t proj_input = s.B * mine * s.E * s.elem;  // the merged heads, saved by the output projection
  const int64_t ring_state = s.B * mine * s.E * s.elem * 3;  // this rank's q, k, v (one projection buffer)
  if (o.strategy == "lss-kv") {
    add_gather(b, s, s.tokens, r, s.E);
    b.kept = kept_math(s, s.H, mine, s.L) + 2 * s.B * s.L * s.E * s.elem + s.B * mine * s.E * s.elem + proj_input;
  } else if (o.strategy == "lss-x") {
    const int64_t others = s.B * s.E * (s.L - mine) * s.elem;
    b = {others, others, others, others, 0};
    b.kept = kept_math(s, s.H, mine, s.L) + 3 * s.B * s.L * s.E * s.elem + s.B * mine * s.E * s.elem + proj_input;
  } else if (o.strategy == "ulysses") {
    add_ulysses(b, s, s.tokens, rank);
    const int64_t g = heads_of(s.H, s.n, rank);
    b.kept = kept_math(s, g, s.L, s.L) + 3 * s.B * g * s.D * s.L * s.elem + proj_input;
  } else if (o.strategy == "ring") {
    add_ring(b, s, s.tokens, r, s.E);
    b.kept = ring_state + proj_input + (s.B * mine * s.E + s.B * s.H * mine) * s.acc;
  } else if (o.strategy == "hybrid") {
    const int u = static_cast<int>(o.ulysses_size), group = rank / u, p = rank % u;
    const std::vector<int64_t> inner(s.tokens.begin() + group * u, s.tokens.begin() + (group + 1) * u);
    std::vector<int64_t> chunks;
    for (int q = 0; q < s.n / u; ++q) chunks.push_back(sum(s.tokens, static_cast<size_t>(q * u), (q + 1) * u));
    const int64_t g = u > 1 ? heads_of(s.H, u, p) : s.H, chunk = chunks[static_cast<size_t>(group)];
    if (u > 1) add_ulysses(b, s, inner, p);
    const bool across = chunks.size() > 1 && g > 0;
    const bool ring = o.hybrid_outer == "ring";
    if (across) (ring ? add_ring : add_gather)(b, s, chunks, static_cast<size_t>(group), g * s.D);
    // q, k, v of the chunk for g heads: the all-to-all's receive buffer (u > 1) or the projection (u = 1).
    const int64_t qkv = 3 * s.B * g * s.D * chunk * s.elem;
    if (ring && across) {
      b.kept = qkv + proj_input + (s.B * g * chunk * s.D + s.B * g * chunk) * s.acc;
    } else if (u == 1) {  // lss-kv across groups of one: lss-kv itself
      b.kept = kept_math(s, s.H, mine, s.L) + 2 * s.B * s.L * s.E * s.elem + s.B * mine * s.E * s.elem + proj_input;
    } else {
      b.kept = kept_math(s, g, chunk, s.L) + qkv + (across ? 2 * s.B * g * s.D * s.L * s.elem : 0) + proj_input;
    }
  }
  return b;
}

class Accounting : public ::testing::TestWithParam<std::tuple<std::string, torch::ScalarType>> {};

TEST_P(Accounting, BytesMovedAndKeptEqualTheFormulas) {
  const auto& grid = testing::test_grid();
  SelftestOptions o;
  o.length = 97;  // divisible by none of 2..4 ranks
  o.layers = 2;
  o.dim = 24;
  o.heads = 3;    // divisible by none of 2 or 4 ranks (uneven head groups, one rank without heads on 4)
  o.batch = 2;
  o.patch = 2;
  o.dtype = std::get<1>(GetParam());
  o = testing_cases::with_strategy(o, std::get<0>(GetParam()), grid.seq_size());
  const auto r = run_sequence_parallel_selftest(grid, o);
  ASSERT_TRUE(r.passed());

  Shape s{o.batch, o.dim, o.heads, o.dim / o.heads, o.length, grid.seq_size(), {},
          static_cast<int64_t>(c10::elementSize(o.dtype)), static_cast<int64_t>(c10::elementSize(o.dtype))};
  s.tokens = dist::SequenceShard::even(o.length, grid.seq_size(), 0).counts;
  ASSERT_EQ(static_cast<int>(r.per_rank.size()), grid.world()->size());
  for (int world_rank = 0; world_rank < grid.world()->size(); ++world_rank) {
    const int seq_rank = world_rank % grid.seq_size();  // grids are data-major: world = data * seq + seq_rank
    const auto want = expected(o, s, grid.seq_size() > 1 ? seq_rank : 0);
    const auto& got = r.per_rank[static_cast<size_t>(world_rank)];
    const std::string where = "world rank " + std::to_string(world_rank) + ", strategy " + std::get<0>(GetParam());
    if (grid.seq_size() > 1) {
      EXPECT_EQ(got.forward_sent, want.forward_sent) << where;
      EXPECT_EQ(got.forward_received, want.forward_received) << where;
      EXPECT_EQ(got.backward_sent, want.backward_sent) << where;
      EXPECT_EQ(got.backward_received, want.backward_received) << where;
      EXPECT_EQ(got.kept, want.kept) << where;
    } else {  // one sequence rank: every strategy is the local attention, nothing moves
      EXPECT_EQ(got.forward_sent + got.forward_received + got.backward_sent + got.backward_received, 0) << where;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Strategies, Accounting,
                         ::testing::Combine(::testing::ValuesIn(testing_cases::strategies()),
                                            ::testing::Values(torch::kFloat64, torch::kFloat32)),
                         [](const auto& info) {
                           return testing_cases::test_name(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) == torch::kFloat64 ? "_float64" : "_float32");
                         });

}  // namespace
}  // namespace spvit::model

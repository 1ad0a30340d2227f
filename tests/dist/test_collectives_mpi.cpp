// Collectives across real ranks: uneven all-gather / reduce-scatter, all-reduce, broadcast, send/recv, and the
// differentiable row gather (forward all-gather, backward reduce-scatter).
#include <gtest/gtest.h>

#include "mpi_test_grid.h"
#include "spvit/dist/collectives.h"

namespace spvit::dist {
namespace {

const CommPtr& world() { return testing::test_grid().world(); }

// Rank r holds r+1 rows (rank 0 of a 3+ rank world holds none, to cover empty contributions).
std::vector<int64_t> uneven_rows(int n) {
  std::vector<int64_t> rows;
  for (int r = 0; r < n; ++r) rows.push_back(n >= 3 && r == 0 ? 0 : r + 1);
  return rows;
}

TEST(Collectives, UnevenAllGather) {
  auto& comm = *world();
  const auto rows = uneven_rows(comm.size());
  auto local = torch::full({rows[comm.rank()], 3}, 100.0 * comm.rank(), torch::kFloat64) +
               torch::arange(rows[comm.rank()] * 3, torch::kFloat64).view({-1, 3});
  auto all = all_gather_rows(comm, local, rows);
  int64_t row = 0;
  for (int r = 0; r < comm.size(); ++r) {
    for (int64_t i = 0; i < rows[r]; ++i, ++row) {
      for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(all[row][c].item<double>(), 100.0 * r + i * 3 + c);
    }
  }
  EXPECT_EQ(row, all.size(0));
}

TEST(Collectives, UnevenReduceScatterSums) {
  auto& comm = *world();
  const auto rows = uneven_rows(comm.size());
  int64_t total = 0;
  for (auto r : rows) total += r;
  // Rank q contributes (q + 1) * index at every position; the sum over ranks is index * n(n+1)/2.
  auto input = torch::arange(total, torch::kFloat64) * (comm.rank() + 1);
  auto out = torch::empty({rows[comm.rank()]}, torch::kFloat64);
  comm.reduce_scatter(input, out, rows, ReduceOp::Sum)->wait();
  const double factor = comm.size() * (comm.size() + 1) / 2.0;
  int64_t offset = 0;
  for (int r = 0; r < comm.rank(); ++r) offset += rows[r];
  for (int64_t i = 0; i < rows[comm.rank()]; ++i) EXPECT_EQ(out[i].item<double>(), (offset + i) * factor);
}

TEST(Collectives, AllReduceBroadcastSendRecv) {
  auto& comm = *world();
  const int n = comm.size(), me = comm.rank();
  auto x = torch::full({4}, double(me + 1), torch::kFloat64);
  auto sum = x.clone(), avg = x.clone(), mx = x.clone();
  comm.all_reduce(sum, ReduceOp::Sum)->wait();
  comm.all_reduce(avg, ReduceOp::Avg)->wait();
  comm.all_reduce(mx, ReduceOp::Max)->wait();
  EXPECT_EQ(sum[0].item<double>(), n * (n + 1) / 2.0);
  EXPECT_DOUBLE_EQ(avg[0].item<double>(), (n + 1) / 2.0);
  EXPECT_EQ(mx[0].item<double>(), n);
  auto b = me == n - 1 ? torch::full({3}, 7L, torch::kLong) : torch::zeros({3}, torch::kLong);
  comm.broadcast(b, n - 1)->wait();
  EXPECT_EQ(b.sum().item<int64_t>(), 21);
  // Ring: send to the next rank, receive from the previous one.
  auto payload = torch::full({2}, float(me), torch::kFloat32);
  auto got = torch::empty({2}, torch::kFloat32);
  auto s = comm.send(payload, (me + 1) % n, 3);
  auto r = comm.recv(got, (me + n - 1) % n, 3);
  r->wait();
  s->wait();
  EXPECT_EQ(got[0].item<float>(), float((me + n - 1) % n));
  comm.barrier()->wait();
  auto half = torch::full({3}, 0.5, torch::kBFloat16);
  comm.all_reduce(half, ReduceOp::Sum)->wait();
  EXPECT_EQ(half[0].item<float>(), 0.5f * n);
}

TEST(Collectives, GatherRowsBackwardIsOneReduceScatterOfTheGradient) {
  const CommPtr& comm = world();
  const int n = comm->size(), me = comm->rank();
  const auto rows = uneven_rows(n);
  int64_t total = 0;
  for (auto r : rows) total += r;
  // Every rank weights the gathered rows with its own coefficients w_r; d(sum_r <w_r, gathered>)/d(local rows) on
  // rank s is sum_r w_r[rows of s] -- which each rank can compute because every w_r comes from a known seed.
  auto weights_of = [&](int r) {
    torch::manual_seed(100 + r);
    return torch::randn({total, 2}, torch::kFloat64);
  };
  auto local = torch::randn({rows[me], 2}, torch::kFloat64).requires_grad_(true);
  comm->reset_counters();
  auto gathered = gather_rows(local, comm, rows);
  (gathered * weights_of(me)).sum().backward();
  EXPECT_EQ(comm->counters().calls_of(CollectiveOp::AllGather), 1);
  EXPECT_EQ(comm->counters().calls_of(CollectiveOp::ReduceScatter), 1);
  int64_t offset = 0;
  for (int r = 0; r < me; ++r) offset += rows[r];
  auto expected = torch::zeros({rows[me], 2}, torch::kFloat64);
  for (int r = 0; r < n; ++r) expected += weights_of(r).narrow(0, offset, rows[me]);
  EXPECT_LT(testing::max_abs_diff(local.grad(), expected), 1e-12);
}

}  // namespace
}  // namespace spvit::dist

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

// Rows rank `from` sends to rank `to` in the all-to-all tests: uneven, and zero for some pairs.
int64_t block_rows(int from, int to) { return (from + 2 * to) % 3; }

// The value of row i of the block rank `from` sends to rank `to`: identifies all three.
double block_value(int from, int to, int64_t i) { return 1000.0 * from + 100.0 * to + static_cast<double>(i); }

TEST(Collectives, UnevenAllToAllDeliversEveryBlockAndCountsTheBytesThatLeaveAndArrive) {
  auto& comm = *world();
  const int n = comm.size(), me = comm.rank();
  std::vector<int64_t> send_rows, recv_rows;
  std::vector<torch::Tensor> blocks;
  for (int q = 0; q < n; ++q) {
    send_rows.push_back(block_rows(me, q));
    recv_rows.push_back(block_rows(q, me));
    auto block = torch::empty({send_rows.back(), 2}, torch::kFloat64);
    for (int64_t i = 0; i < send_rows.back(); ++i) block[i].fill_(block_value(me, q, i));
    blocks.push_back(block);
  }
  auto input = torch::cat(blocks);
  int64_t total_in = 0;
  for (auto r : recv_rows) total_in += r;
  auto output = torch::full({total_in, 2}, -1.0, torch::kFloat64);
  comm.reset_counters();
  comm.all_to_all(input, output, rows_to_counts(send_rows, 2), rows_to_counts(recv_rows, 2))->wait();
  int64_t row = 0;
  int64_t sent_elsewhere = 0, arrived_from_elsewhere = 0;
  for (int q = 0; q < n; ++q) {
    for (int64_t i = 0; i < recv_rows[q]; ++i, ++row) {
      EXPECT_EQ(output[row][0].item<double>(), block_value(q, me, i));
      EXPECT_EQ(output[row][1].item<double>(), block_value(q, me, i));
    }
    if (q != me) {
      sent_elsewhere += send_rows[q] * 2 * 8;
      arrived_from_elsewhere += recv_rows[q] * 2 * 8;
    }
  }
  EXPECT_EQ(comm.counters().calls_of(CollectiveOp::AllToAll), 1);
  EXPECT_EQ(comm.counters().sent_of(CollectiveOp::AllToAll), sent_elsewhere);
  EXPECT_EQ(comm.counters().received_of(CollectiveOp::AllToAll), arrived_from_elsewhere);
}

TEST(Collectives, AllToAllRowsBackwardSendsEveryGradientBlockBackToItsOwner) {
  const CommPtr& comm = world();
  const int n = comm->size(), me = comm->rank();
  std::vector<int64_t> send_rows, recv_rows;
  for (int q = 0; q < n; ++q) {
    send_rows.push_back(block_rows(me, q) + 1);
    recv_rows.push_back(block_rows(q, me) + 1);
  }
  int64_t sending = 0, receiving = 0;
  for (int q = 0; q < n; ++q) sending += send_rows[q], receiving += recv_rows[q];
  // Rank r weights what it received with w_r (seeded by r). The gradient of rank r's block for q is the part of w_q
  // that multiplies it: rows [offset of r among q's receive blocks, + send_rows[q]).
  auto weights_of = [&](int r) {
    int64_t rows = 0;
    for (int q = 0; q < n; ++q) rows += block_rows(q, r) + 1;
    torch::manual_seed(300 + r);
    return torch::randn({rows, 3}, torch::kFloat64);
  };
  auto local = torch::randn({sending, 3}, torch::kFloat64).requires_grad_(true);
  comm->reset_counters();
  auto received = all_to_all_rows(local, comm, send_rows, recv_rows);
  ASSERT_EQ(received.size(0), receiving);
  (received * weights_of(me)).sum().backward();
  EXPECT_EQ(comm->counters().calls_of(CollectiveOp::AllToAll), 2) << "one forward, one backward";
  std::vector<torch::Tensor> expected;
  for (int q = 0; q < n; ++q) {
    int64_t offset = 0;
    for (int p = 0; p < me; ++p) offset += block_rows(p, q) + 1;
    expected.push_back(weights_of(q).narrow(0, offset, send_rows[q]));
  }
  EXPECT_LT(testing::max_abs_diff(local.grad(), torch::cat(expected)), 1e-15);
}

TEST(Collectives, GroupedSendRecvShiftsARingAndAChain) {
  auto& comm = *world();
  const int n = comm.size(), me = comm.rank();
  auto mine = torch::full({5}, double(me), torch::kFloat64);
  auto got = torch::full({5}, -1.0, torch::kFloat64);
  comm.reset_counters();
  comm.send_recv(mine, (me + 1) % n, got, (me + n - 1) % n, 7)->wait();  // ring: everyone sends first
  EXPECT_EQ(got[0].item<double>(), double((me + n - 1) % n));
  EXPECT_EQ(comm.counters().sent_of(CollectiveOp::SendRecv), 5 * 8);
  EXPECT_EQ(comm.counters().received_of(CollectiveOp::SendRecv), 5 * 8);
  // A chain: the last rank sends nothing, the first receives nothing (-1), and its buffer stays untouched.
  got.fill_(-1.0);
  comm.send_recv(mine, me + 1 < n ? me + 1 : -1, got, me > 0 ? me - 1 : -1, 8)->wait();
  EXPECT_EQ(got[0].item<double>(), me > 0 ? double(me - 1) : -1.0);
}

TEST(Collectives, CountersFollowTheNcclTestsDefinitions) {
  auto& comm = *world();
  const int n = comm.size(), me = comm.rank();
  const auto rows = uneven_rows(n);
  int64_t total = 0;
  for (auto r : rows) total += r;
  comm.reset_counters();
  all_gather_rows(comm, torch::zeros({rows[me], 4}, torch::kFloat32), rows);
  // all_gather: every other rank's block arrives; this rank's block goes out (N-1)/N-style: the same amount.
  EXPECT_EQ(comm.counters().received_of(CollectiveOp::AllGather), (total - rows[me]) * 4 * 4);
  EXPECT_EQ(comm.counters().sent_of(CollectiveOp::AllGather), (total - rows[me]) * 4 * 4);
  EXPECT_EQ(comm.counters().bytes_of(CollectiveOp::AllGather), total * 4 * 4);
  auto t = torch::zeros({10}, torch::kFloat64);
  comm.all_reduce(t)->wait();
  EXPECT_EQ(comm.counters().sent_of(CollectiveOp::AllReduce), 2 * 80 * (n - 1) / n);
  comm.broadcast(t, 0)->wait();
  EXPECT_EQ(comm.counters().sent_of(CollectiveOp::Broadcast), n > 1 && me == 0 ? 80 : 0);
  EXPECT_EQ(comm.counters().received_of(CollectiveOp::Broadcast), n > 1 && me != 0 ? 80 : 0);
}

}  // namespace
}  // namespace spvit::dist

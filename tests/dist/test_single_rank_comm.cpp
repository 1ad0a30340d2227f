// The MPI communicator's local behaviour on a one-rank communicator: copies, counters, dtype staging,
// argument checks, and the timeout watchdog.
#include <gtest/gtest.h>

#include "spvit/core/error.h"
#include "spvit/dist/mpi_communicator.h"
#include "spvit/core/timer.h"

namespace spvit::dist {
namespace {

std::shared_ptr<MpiCommunicator> self_comm(double timeout_s = 30) {
  MPI_Comm dup;
  MPI_Comm_dup(MPI_COMM_SELF, &dup);
  return std::make_shared<MpiCommunicator>(dup, "self", timeout_s);
}

TEST(SingleRankComm, CollectivesAreIdentityAndCounted) {
  auto comm = self_comm();
  auto x = torch::arange(12, torch::kFloat64).view({3, 4});
  auto out = torch::empty({3, 4}, torch::kFloat64);
  comm->all_gather(x, out, {12})->wait();
  EXPECT_TRUE(torch::equal(out, x));
  auto rs = torch::empty({12}, torch::kFloat64);
  comm->reduce_scatter(x, rs, {12}, ReduceOp::Avg)->wait();
  EXPECT_TRUE(torch::equal(rs, x.flatten()));
  auto y = x.clone();
  comm->all_reduce(y, ReduceOp::Sum)->wait();
  EXPECT_TRUE(torch::equal(y, x));
  EXPECT_EQ(comm->counters().calls_of(CollectiveOp::AllGather), 1);
  EXPECT_EQ(comm->counters().calls_of(CollectiveOp::ReduceScatter), 1);
  EXPECT_EQ(comm->counters().calls_of(CollectiveOp::AllReduce), 1);
  EXPECT_EQ(comm->counters().bytes_of(CollectiveOp::AllGather), 12 * 8);
  comm->reset_counters();
  EXPECT_EQ(comm->counters().calls_of(CollectiveOp::AllGather), 0);
}

TEST(SingleRankComm, StagesNonContiguousAndLowPrecisionTensors) {
  auto comm = self_comm();
  auto base = torch::arange(16, torch::kFloat32).view({4, 4});
  auto strided = base.t();  // not contiguous: staged through a buffer
  auto out = torch::empty({4, 4}, torch::kFloat32);
  comm->all_gather(strided, out, {16})->wait();
  EXPECT_TRUE(torch::equal(out, strided));
  auto bf = torch::full({5}, 1.5, torch::kBFloat16);  // MPI cannot sum bfloat16: reduced in float32
  comm->all_reduce(bf, ReduceOp::Sum)->wait();
  EXPECT_TRUE(torch::equal(bf, torch::full({5}, 1.5, torch::kBFloat16)));
}

TEST(SingleRankComm, WrongSizesAreRejectedWithTheirNumbers) {
  auto comm = self_comm();
  auto x = torch::zeros({5});
  auto out = torch::empty({6});
  try {
    comm->all_gather(x, out, {5});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("output holds 6 elements, the counts sum to 5"), std::string::npos);
  }
  EXPECT_THROW(comm->all_gather(x, out, {5, 1}), Error);  // two counts for one rank
  EXPECT_THROW(comm->broadcast(x, 1), Error);
}

TEST(SingleRankComm, WatchdogEndsAWaitThatCannotComplete) {
  auto comm = self_comm(/*timeout_s=*/0.3);
  auto buffer = torch::zeros({4});
  auto pending = comm->recv(buffer, 0, /*tag=*/7);  // nobody sends: can never complete
  Stopwatch watch;
  try {
    pending->wait();
    FAIL() << "wait() returned for a receive nobody sends";
  } catch (const CommTimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("timed out after 0.3 s waiting for recv #1 on communicator 'self'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_GE(watch.seconds(), 0.3);
  EXPECT_LT(watch.seconds(), 5.0);
  // Complete the receive so the handle can be released cleanly.
  auto payload = torch::ones({4});
  auto sent = comm->send(payload, 0, 7);
  pending->wait();
  sent->wait();
  EXPECT_TRUE(torch::equal(buffer, payload));
}

}  // namespace
}  // namespace spvit::dist

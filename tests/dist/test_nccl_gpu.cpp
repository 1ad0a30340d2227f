// The NCCL communicator on a GPU (one rank: the GPU machine has one GPU and NCCL refuses two ranks on one device;
// the multi-rank math is covered by the MPI matrix and by `spvit selftest sp --device cuda` under mpirun).
// Skips cleanly without CUDA or NCCL.
#include <gtest/gtest.h>

#include "spvit/core/device.h"
#include "spvit/core/error.h"
#include "spvit/dist/nccl_communicator.h"
#include "spvit/dist/process_grid.h"

namespace spvit::dist {
namespace {

class NcclGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!nccl_compiled_in()) GTEST_SKIP() << "this build has no NCCL";
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible";
    grid_ = std::make_unique<ProcessGrid>(ProcessGrid::create({1, 1}, /*timeout_s=*/60, "nccl", 0));
  }
  torch::TensorOptions cuda(torch::ScalarType dtype) const { return torch::TensorOptions().dtype(dtype).device(torch::kCUDA, 0); }
  std::unique_ptr<ProcessGrid> grid_;
};

TEST_F(NcclGpuTest, GridUsesNcclForEveryGroup) {
  EXPECT_EQ(grid_->backend(), "nccl");
  EXPECT_EQ(grid_->seq()->size(), 1);
}

TEST_F(NcclGpuTest, CollectivesOnEveryDtypeGiveTheSingleRankResult) {
  for (auto dtype : {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    auto& comm = *grid_->seq();
    const auto input = torch::randn({1000}, cuda(torch::kFloat)).to(dtype);
    auto gathered = torch::empty({1000}, cuda(dtype));
    comm.all_gather(input, gathered, {1000})->wait();
    EXPECT_TRUE(torch::equal(gathered.cpu(), input.cpu()));

    auto scattered = torch::empty({1000}, cuda(dtype));
    comm.reduce_scatter(input, scattered, {1000}, ReduceOp::Sum)->wait();
    EXPECT_TRUE(torch::equal(scattered.cpu(), input.cpu()));

    for (auto op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max, ReduceOp::Min}) {
      auto t = input.clone();
      comm.all_reduce(t, op)->wait();
      EXPECT_TRUE(torch::equal(t.cpu(), input.cpu()));
    }
    auto b = input.clone();
    comm.broadcast(b, 0)->wait();
    EXPECT_TRUE(torch::equal(b.cpu(), input.cpu()));
  }
}

TEST_F(NcclGpuTest, WaitOrdersTheCallersStreamAfterTheCollective) {
  // A large product feeds the all-reduce and a second product consumes its result, all without host syncs:
  // the result is right only if the communication stream waited for the first and the caller waited for it.
  auto& comm = *grid_->world();
  auto a = torch::randn({2048, 2048}, cuda(torch::kFloat));
  auto x = torch::matmul(a, a);
  const auto expected = torch::matmul(x, a).cpu();
  auto work = comm.all_reduce(x, ReduceOp::Sum);
  work->wait();
  auto y = torch::matmul(x, a);
  EXPECT_TRUE(torch::allclose(y.cpu(), expected, 1e-4, 1e-3));
  torch::cuda::synchronize();
  EXPECT_TRUE(work->is_completed());
}

TEST_F(NcclGpuTest, CpuTensorsGoThroughMpiAndCountersCountGpuCalls) {
  auto& comm = *grid_->world();
  comm.reset_counters();
  auto host = torch::full({3}, 2.0, torch::kFloat64);
  comm.all_reduce(host, ReduceOp::Sum)->wait();
  EXPECT_EQ(host[0].item<double>(), 2.0);
  auto dev = torch::ones({8}, cuda(torch::kFloat));
  comm.all_reduce(dev, ReduceOp::Sum)->wait();
  EXPECT_EQ(comm.counters().calls_of(CollectiveOp::AllReduce), 1);  // only the GPU call is NCCL's
  comm.barrier()->wait();
}

TEST_F(NcclGpuTest, DuplicateIsAnIndependentCommunicator) {
  auto dup = grid_->world()->duplicate("world-2");
  auto t = torch::arange(16, cuda(torch::kFloat));
  dup->all_reduce(t, ReduceOp::Max)->wait();
  EXPECT_TRUE(torch::equal(t.cpu(), torch::arange(16, torch::kFloat)));
  EXPECT_EQ(dup->name(), "world-2");
}

// The strategies' NCCL calls on one rank: the all-to-all (ncclSend/ncclRecv pairs in one group), the grouped
// send_recv of the ring (to itself), and a split subgroup (hybrid); values, counters and bytes.
TEST_F(NcclGpuTest, AllToAllSendRecvAndSplitOnOneRank) {
  auto& comm = *grid_->seq();
  comm.reset_counters();
  for (auto dtype : {torch::kFloat, torch::kDouble, torch::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    const auto input = torch::randn({777}, cuda(torch::kFloat)).to(dtype);
    auto output = torch::empty({777}, cuda(dtype));
    comm.all_to_all(input, output, {777}, {777})->wait();
    EXPECT_TRUE(torch::equal(output.cpu(), input.cpu()));
    auto received = torch::zeros({777}, cuda(dtype));
    comm.send_recv(input, 0, received, 0, /*tag=*/501)->wait();
    EXPECT_TRUE(torch::equal(received.cpu(), input.cpu()));
  }
  EXPECT_EQ(comm.counters().calls_of(CollectiveOp::AllToAll), 3);
  EXPECT_EQ(comm.counters().calls_of(CollectiveOp::SendRecv), 3);
  EXPECT_EQ(comm.counters().received_of(CollectiveOp::AllToAll), 0);  // one rank: nothing from others
  auto sub = comm.split(0, 0, "sub");
  ASSERT_EQ(sub->size(), 1);
  auto t = torch::arange(5, cuda(torch::kFloat));
  sub->all_reduce(t, ReduceOp::Sum)->wait();
  EXPECT_TRUE(torch::equal(t.cpu(), torch::arange(5, torch::kFloat)));
}

TEST_F(NcclGpuTest, WrongDeviceAndBadCountsAreClearErrors) {
  auto& comm = *grid_->seq();
  auto in = torch::ones({10}, cuda(torch::kFloat));
  auto out = torch::empty({12}, cuda(torch::kFloat));
  EXPECT_THROW(comm.all_gather(in, out, {10}), Error);
}

TEST(DeviceSelection, AutoIsCpuWithoutGpusAndCudaIsAnErrorThere) {
  if (torch::cuda::is_available()) {
    EXPECT_TRUE(select_device("auto", 0).is_cuda());
    EXPECT_EQ(resolve_backend("auto", torch::Device(torch::kCUDA, 0), nccl_compiled_in()),
              nccl_compiled_in() ? "nccl" : "mpi");
  } else {
    EXPECT_TRUE(select_device("auto", 0).is_cpu());
    EXPECT_THROW(select_device("cuda", 0), ConfigError);
  }
  EXPECT_TRUE(select_device("cpu", 3).is_cpu());
  EXPECT_EQ(resolve_backend("auto", torch::kCPU, true), "mpi");
  EXPECT_THROW(resolve_backend("nccl", torch::kCPU, true), ConfigError);
  if (!nccl_compiled_in()) {
    EXPECT_THROW(resolve_backend("nccl", torch::kCPU, false), ConfigError);
  }
}

}  // namespace
}  // namespace spvit::dist

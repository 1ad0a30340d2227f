// NcclCommunicator: the Communicator interface over NCCL for CUDA tensors (see include/spvit/dist/nccl_communicator.h).
#include "spvit/dist/nccl_communicator.h"

#include "spvit/dist/mpi.h"

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <numeric>

#include "nccl_watchdog.h"
#include "spvit/core/error.h"
#include "spvit/dist/mpi_communicator.h"

namespace spvit::dist {
namespace {

ncclDataType_t nccl_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return ncclFloat32;
    case torch::kDouble: return ncclFloat64;
    case torch::kHalf: return ncclFloat16;
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kInt: return ncclInt32;
    case torch::kLong: return ncclInt64;
    case torch::kByte: case torch::kBool: return ncclUint8;
    case torch::kChar: return ncclInt8;
    default: SPVIT_THROW(CommError, "NCCL communicator: unsupported dtype ", c10::toString(t));
  }
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Avg: return ncclAvg;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
  }
  return ncclSum;
}

int64_t nbytes(const torch::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); }

char* byte_ptr(const torch::Tensor& t) { return static_cast<char*>(t.data_ptr()); }

// The NCCL Work: an end event on the communication stream plus the tensors it reads and writes.
class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<PendingNcclOp> op, std::vector<torch::Tensor> tensors, int device)
      : op_(std::move(op)), tensors_(std::move(tensors)), device_(device) {}
  // The caller's current stream waits for the collective; the host does not.
  void wait() override {
    auto stream = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_));
    SPVIT_CHECK_COMM_CUDA(cudaStreamWaitEvent(stream.stream(), op_->end, 0));
  }
  bool is_completed() override { return cudaEventQuery(op_->end) == cudaSuccess; }

 private:
  std::shared_ptr<PendingNcclOp> op_;
  std::vector<torch::Tensor> tensors_;
  int device_;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(CommPtr host, std::shared_ptr<NcclCommHandle> comm, int device, std::string name, double timeout_s)
      : Communicator(std::move(name), timeout_s),
        host_(std::move(host)),
        comm_(std::move(comm)),
        device_(device),
        stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, static_cast<c10::DeviceIndex>(device))) {
    SPVIT_CHECK_COMM_CUDA(cudaEventCreateWithFlags(&inputs_ready_, cudaEventDisableTiming));
  }
  ~NcclCommunicator() override {
    cudaStreamSynchronize(stream_.stream());  // nothing of ours may still run when the comm is destroyed
    cudaEventDestroy(inputs_ready_);
  }

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }

  WorkPtr all_gather(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts) override {
    if (on_host(input)) return host_->all_gather(input, output, counts);
    check_counts("all_gather", counts, input.numel(), output.numel());
    const auto traffic = traffic::all_gather(counts, rank(), output.element_size());
    return collective(CollectiveOp::AllGather, traffic, {input, output}, [&](ncclComm_t c, cudaStream_t s) {
      const auto type = nccl_dtype(input.scalar_type());
      if (all_equal(counts)) {
        SPVIT_CHECK_NCCL(ncclAllGather(input.data_ptr(), output.data_ptr(), counts[0], type, c, s), c);
        return;
      }
      // Uneven segments (the last sequence rank may hold fewer tokens): one broadcast per root, grouped.
      SPVIT_CHECK_NCCL(ncclGroupStart(), c);
      int64_t offset = 0;
      for (int r = 0; r < size(); ++r) {
        if (counts[r] > 0) {
          SPVIT_CHECK_NCCL(ncclBroadcast(input.data_ptr(), byte_ptr(output) + offset * output.element_size(), counts[r],
                                         type, r, c, s), c);
        }
        offset += counts[r];
      }
      SPVIT_CHECK_NCCL(ncclGroupEnd(), c);
    });
  }

  WorkPtr reduce_scatter(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts,
                         ReduceOp op) override {
    if (on_host(input)) return host_->reduce_scatter(input, output, counts, op);
    check_counts("reduce_scatter", counts, output.numel(), input.numel());
    const auto traffic = traffic::reduce_scatter(counts, rank(), input.element_size());
    return collective(CollectiveOp::ReduceScatter, traffic, {input, output}, [&](ncclComm_t c, cudaStream_t s) {
      const auto type = nccl_dtype(input.scalar_type());
      if (all_equal(counts)) {
        SPVIT_CHECK_NCCL(ncclReduceScatter(input.data_ptr(), output.data_ptr(), counts[0], type, nccl_op(op), c, s), c);
        return;
      }
      SPVIT_CHECK_NCCL(ncclGroupStart(), c);
      int64_t offset = 0;
      for (int r = 0; r < size(); ++r) {
        if (counts[r] > 0) {
          SPVIT_CHECK_NCCL(ncclReduce(byte_ptr(input) + offset * input.element_size(), output.data_ptr(), counts[r], type,
                                      nccl_op(op), r, c, s), c);
        }
        offset += counts[r];
      }
      SPVIT_CHECK_NCCL(ncclGroupEnd(), c);
    });
  }

  WorkPtr all_reduce(torch::Tensor& tensor, ReduceOp op) override {
    if (on_host(tensor)) return host_->all_reduce(tensor, op);
    require_contiguous(tensor, "all_reduce");
    return collective(CollectiveOp::AllReduce, traffic::all_reduce(nbytes(tensor), size()), {tensor}, [&](ncclComm_t c, cudaStream_t s) {
      SPVIT_CHECK_NCCL(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), nccl_dtype(tensor.scalar_type()),
                                     nccl_op(op), c, s), c);
    });
  }

  WorkPtr reduce(torch::Tensor& tensor, int root, ReduceOp op) override {
    if (on_host(tensor)) return host_->reduce(tensor, root, op);
    require_contiguous(tensor, "reduce");
    const auto traffic = traffic::rooted(nbytes(tensor), size(), rank() != root);
    return collective(CollectiveOp::Reduce, traffic, {tensor}, [&](ncclComm_t c, cudaStream_t s) {
      SPVIT_CHECK_NCCL(ncclReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), nccl_dtype(tensor.scalar_type()),
                                  nccl_op(op), root, c, s), c);
    });
  }

  WorkPtr broadcast(torch::Tensor& tensor, int root) override {
    if (on_host(tensor)) return host_->broadcast(tensor, root);
    require_contiguous(tensor, "broadcast");
    const auto traffic = traffic::rooted(nbytes(tensor), size(), rank() == root);
    return collective(CollectiveOp::Broadcast, traffic, {tensor}, [&](ncclComm_t c, cudaStream_t s) {
      SPVIT_CHECK_NCCL(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), nccl_dtype(tensor.scalar_type()),
                                     root, c, s), c);
    });
  }

  // NCCL matches point-to-point messages by call order, not by tag.
  WorkPtr send(const torch::Tensor& tensor, int dst, int tag) override {
    if (on_host(tensor)) return host_->send(tensor, dst, tag);
    require_contiguous(tensor, "send");
    return collective(CollectiveOp::Send, traffic::rooted(nbytes(tensor), 2, true), {tensor}, [&](ncclComm_t c, cudaStream_t s) {
      SPVIT_CHECK_NCCL(ncclSend(tensor.data_ptr(), tensor.numel(), nccl_dtype(tensor.scalar_type()), dst, c, s), c);
    });
  }

  WorkPtr recv(torch::Tensor& tensor, int src, int tag) override {
    if (on_host(tensor)) return host_->recv(tensor, src, tag);
    require_contiguous(tensor, "recv");
    return collective(CollectiveOp::Recv, traffic::received(nbytes(tensor)), {tensor}, [&](ncclComm_t c, cudaStream_t s) {
      SPVIT_CHECK_NCCL(ncclRecv(tensor.data_ptr(), tensor.numel(), nccl_dtype(tensor.scalar_type()), src, c, s), c);
    });
  }

  // Grouped, so that every rank of a ring or chain can post its send before its receive without deadlocking.
  WorkPtr send_recv(const torch::Tensor& send_tensor, int dst, torch::Tensor& recv_tensor, int src, int tag) override {
    const torch::Tensor& probe = dst >= 0 ? send_tensor : recv_tensor;
    if (on_host(probe)) return host_->send_recv(send_tensor, dst, recv_tensor, src, tag);
    std::vector<torch::Tensor> tensors;
    if (dst >= 0) tensors.push_back(send_tensor);
    if (src >= 0) tensors.push_back(recv_tensor);
    for (const auto& t : tensors) require_contiguous(t, "send_recv");
    const auto traffic = traffic::send_recv(dst >= 0 ? nbytes(send_tensor) : 0, src >= 0 ? nbytes(recv_tensor) : 0);
    return collective(CollectiveOp::SendRecv, traffic, std::move(tensors), [&](ncclComm_t c, cudaStream_t s) {
      SPVIT_CHECK_NCCL(ncclGroupStart(), c);
      if (dst >= 0) {
        SPVIT_CHECK_NCCL(ncclSend(send_tensor.data_ptr(), send_tensor.numel(), nccl_dtype(send_tensor.scalar_type()),
                                  dst, c, s), c);
      }
      if (src >= 0) {
        SPVIT_CHECK_NCCL(ncclRecv(recv_tensor.data_ptr(), recv_tensor.numel(), nccl_dtype(recv_tensor.scalar_type()),
                                  src, c, s), c);
      }
      SPVIT_CHECK_NCCL(ncclGroupEnd(), c);
    });
  }

  // NCCL has no all-to-all with uneven counts: one send and one receive per peer, all in one group.
  WorkPtr all_to_all(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& send_counts,
                     const std::vector<int64_t>& recv_counts) override {
    if (on_host(input)) return host_->all_to_all(input, output, send_counts, recv_counts);
    SPVIT_CHECK(static_cast<int>(send_counts.size()) == size() && static_cast<int>(recv_counts.size()) == size(),
                "NCCL all_to_all on '", name(), "': counts for ", send_counts.size(), "/", recv_counts.size(),
                " ranks, the communicator has ", size());
    const int64_t send_total = std::accumulate(send_counts.begin(), send_counts.end(), int64_t{0});
    const int64_t recv_total = std::accumulate(recv_counts.begin(), recv_counts.end(), int64_t{0});
    SPVIT_CHECK(input.numel() == send_total && output.numel() == recv_total, "NCCL all_to_all on '", name(),
                "': buffers of ", input.numel(), " and ", output.numel(), " elements, the counts sum to ", send_total,
                " and ", recv_total);
    require_contiguous(input, "all_to_all");
    require_contiguous(output, "all_to_all");
    const auto traffic = traffic::all_to_all(send_counts, recv_counts, rank(), input.element_size());
    return collective(CollectiveOp::AllToAll, traffic, {input, output}, [&](ncclComm_t c, cudaStream_t s) {
      const auto type = nccl_dtype(input.scalar_type());
      const int64_t element = input.element_size();
      SPVIT_CHECK_NCCL(ncclGroupStart(), c);
      int64_t send_at = 0, recv_at = 0;
      for (int r = 0; r < size(); ++r) {
        if (send_counts[r] > 0) {
          SPVIT_CHECK_NCCL(ncclSend(byte_ptr(input) + send_at * element, send_counts[r], type, r, c, s), c);
        }
        if (recv_counts[r] > 0) {
          SPVIT_CHECK_NCCL(ncclRecv(byte_ptr(output) + recv_at * element, recv_counts[r], type, r, c, s), c);
        }
        send_at += send_counts[r];
        recv_at += recv_counts[r];
      }
      SPVIT_CHECK_NCCL(ncclGroupEnd(), c);
    });
  }

  WorkPtr barrier() override {
    auto token = torch::zeros({1}, torch::TensorOptions().dtype(torch::kFloat).device(torch::kCUDA, device_));
    return collective(CollectiveOp::Barrier, Traffic{}, {token}, [&](ncclComm_t c, cudaStream_t s) {
      SPVIT_CHECK_NCCL(ncclAllReduce(token.data_ptr(), token.data_ptr(), 1, ncclFloat32, ncclSum, c, s), c);
    });
  }

  CommPtr duplicate(const std::string& name) const override {
    return make_nccl_communicator(host_->duplicate(name), name, timeout_seconds(), device_);
  }
  CommPtr split(int color, int key, const std::string& name) const override {
    return make_nccl_communicator(host_->split(color, key, name), name, timeout_seconds(), device_);
  }

 private:
  // Every GPU operation goes through here: count it, order it after the caller's stream, launch it on the
  // communication stream, record the end event and hand it to the watchdog.
  template <typename Launch>
  WorkPtr collective(CollectiveOp op, const Traffic& traffic, std::vector<torch::Tensor> tensors, Launch&& launch) {
    for (const auto& t : tensors) {
      SPVIT_CHECK(t.is_cuda() && t.get_device() == device_, "NCCL communicator '", name(), "' (", op_name(op),
                  ") got a tensor on ", t.device(), " but runs on cuda:", device_);
    }
    const int64_t number = count_call(op, traffic);
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_));
    auto caller = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_));
    SPVIT_CHECK_COMM_CUDA(cudaEventRecord(inputs_ready_, caller.stream()));
    SPVIT_CHECK_COMM_CUDA(cudaStreamWaitEvent(stream_.stream(), inputs_ready_, 0));
    // The caching allocator must not hand these blocks to someone else while our stream still uses them.
    for (const auto& t : tensors) c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), stream_);
    launch(comm_->get(), stream_.stream());
    auto pending = std::make_shared<PendingNcclOp>(
        comm_, std::string(op_name(op)) + " #" + std::to_string(number) + " on communicator '" + name() + "'",
        timeout_seconds());
    SPVIT_CHECK_COMM_CUDA(cudaEventRecord(pending->end, stream_.stream()));
    watch_nccl_op(pending);
    return std::make_shared<NcclWork>(std::move(pending), std::move(tensors), device_);
  }

  bool on_host(const torch::Tensor& t) const { return !t.is_cuda(); }
  static bool all_equal(const std::vector<int64_t>& counts) {
    return std::all_of(counts.begin(), counts.end(), [&](int64_t c) { return c == counts[0]; });
  }
  void require_contiguous(const torch::Tensor& t, const char* op) const {
    SPVIT_CHECK(t.is_contiguous(), "NCCL ", op, " on communicator '", name(), "' needs a contiguous tensor");
  }
  void check_counts(const char* op, const std::vector<int64_t>& counts, int64_t mine, int64_t total) const {
    SPVIT_CHECK(static_cast<int>(counts.size()) == size(), "NCCL ", op, " on '", name(), "': ", counts.size(),
                " counts for ", size(), " ranks");
    SPVIT_CHECK(counts[rank()] == mine, "NCCL ", op, " on '", name(), "': this rank's block has ", mine,
                " elements but counts[", rank(), "] = ", counts[rank()]);
    const int64_t sum = std::accumulate(counts.begin(), counts.end(), int64_t{0});
    SPVIT_CHECK(sum == total, "NCCL ", op, " on '", name(), "': the full buffer has ", total,
                " elements but the counts add up to ", sum);
  }

  CommPtr host_;
  std::shared_ptr<NcclCommHandle> comm_;
  int device_;
  c10::cuda::CUDAStream stream_;
  cudaEvent_t inputs_ready_ = nullptr;
};

}  // namespace

bool nccl_compiled_in() { return true; }

CommPtr make_nccl_communicator(const CommPtr& host, const std::string& name, double timeout_s, int device) {
  auto* mpi = dynamic_cast<MpiCommunicator*>(host.get());
  SPVIT_CHECK(mpi != nullptr, "NCCL communicator '", name, "' must be bootstrapped over an MPI communicator");
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  ncclUniqueId id{};
  if (mpi->rank() == 0) SPVIT_CHECK_NCCL(ncclGetUniqueId(&id), nullptr);
  const int rc = MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi->handle());
  if (rc != MPI_SUCCESS) SPVIT_THROW(CommError, "broadcasting the NCCL unique id of '", name, "' over MPI failed");
  ncclComm_t comm = nullptr;
  SPVIT_CHECK_NCCL(ncclCommInitRank(&comm, mpi->size(), id, mpi->rank()), nullptr);
  return std::make_shared<NcclCommunicator>(host, std::make_shared<NcclCommHandle>(comm), device, name, timeout_s);
}

}  // namespace spvit::dist

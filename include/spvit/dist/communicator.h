// The collective-communication interface every backend implements (MPI now; NCCL on GPUs).
//
// All operations are asynchronous: they return a Work handle and the result is valid after wait(). A Work keeps
// its tensors alive until it completes. wait() never hangs: a collective that does not complete within the
// communicator's timeout (a dead or stuck peer, ranks calling different collectives) throws CommTimeoutError
// naming the operation, and the application then aborts every rank.
#pragma once
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace spvit::dist {

enum class ReduceOp { Sum, Avg, Max, Min };

enum class CollectiveOp { AllGather, ReduceScatter, AllReduce, Reduce, Broadcast, Send, Recv, Barrier, kCount };
const char* op_name(CollectiveOp op);

class Work {
 public:
  virtual ~Work() = default;
  // Blocks until the operation has completed (its outputs are then valid). Throws CommError/CommTimeoutError.
  virtual void wait() = 0;
  virtual bool is_completed() = 0;
};
using WorkPtr = std::shared_ptr<Work>;

// Call and byte counters per operation kind; tests use them to prove "one collective per layer".
struct OpCounters {
  std::array<int64_t, static_cast<size_t>(CollectiveOp::kCount)> calls{};
  std::array<int64_t, static_cast<size_t>(CollectiveOp::kCount)> bytes{};
  int64_t calls_of(CollectiveOp op) const { return calls[static_cast<size_t>(op)]; }
  int64_t bytes_of(CollectiveOp op) const { return bytes[static_cast<size_t>(op)]; }
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  const std::string& name() const { return name_; }

  // Every rank contributes `input` (contiguous, numel == counts[rank]); `output` (contiguous, numel == sum(counts))
  // receives all contributions concatenated in rank order. counts may differ between ranks.
  virtual WorkPtr all_gather(const torch::Tensor& input, torch::Tensor& output,
                             const std::vector<int64_t>& counts) = 0;
  // `input` (numel == sum(counts)) is reduced element-wise over ranks; rank r receives block r (numel counts[r]).
  virtual WorkPtr reduce_scatter(const torch::Tensor& input, torch::Tensor& output,
                                 const std::vector<int64_t>& counts, ReduceOp op = ReduceOp::Sum) = 0;
  // In place: every rank ends with the reduction of all ranks' `tensor`.
  virtual WorkPtr all_reduce(torch::Tensor& tensor, ReduceOp op = ReduceOp::Sum) = 0;
  // In place on `root`; other ranks' tensors are unchanged.
  virtual WorkPtr reduce(torch::Tensor& tensor, int root, ReduceOp op = ReduceOp::Sum) = 0;
  virtual WorkPtr broadcast(torch::Tensor& tensor, int root) = 0;
  virtual WorkPtr send(const torch::Tensor& tensor, int dst, int tag = 0) = 0;
  virtual WorkPtr recv(torch::Tensor& tensor, int src, int tag = 0) = 0;
  virtual WorkPtr barrier() = 0;
  // A new communicator over the same ranks whose traffic cannot be confused with this one's (MPI_Comm_dup).
  virtual std::shared_ptr<Communicator> duplicate(const std::string& name) const = 0;

  const OpCounters& counters() const { return counters_; }
  void reset_counters() { counters_ = OpCounters{}; }
  double timeout_seconds() const { return timeout_s_; }
  void set_timeout_seconds(double seconds) { timeout_s_ = seconds; }

 protected:
  Communicator(std::string name, double timeout_s) : name_(std::move(name)), timeout_s_(timeout_s) {}
  // Counts one call of `op` moving `bytes`; returns the call's sequence number (for error messages).
  int64_t count_call(CollectiveOp op, int64_t bytes);

 private:
  std::string name_;
  double timeout_s_;
  OpCounters counters_;
  int64_t sequence_ = 0;
};
using CommPtr = std::shared_ptr<Communicator>;

// Blocking helpers on top of the interface.
// Concatenates every rank's `local` along dim 0 (ranks may hold different numbers of rows).
torch::Tensor all_gather_rows(Communicator& comm, const torch::Tensor& local, const std::vector<int64_t>& rows);
// Element counts for a tensor whose dim-0 rows are split as `rows` (each row has `row_numel` elements).
std::vector<int64_t> rows_to_counts(const std::vector<int64_t>& rows, int64_t row_numel);

}  // namespace spvit::dist

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
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace spvit::dist {

enum class ReduceOp { Sum, Avg, Max, Min };

enum class CollectiveOp {
  AllGather, ReduceScatter, AllReduce, Reduce, Broadcast, Send, Recv, Barrier, AllToAll, SendRecv, kCount
};
const char* op_name(CollectiveOp op);

class Work {
 public:
  virtual ~Work() = default;
  // Blocks until the operation has completed (its outputs are then valid). Throws CommError/CommTimeoutError.
  virtual void wait() = 0;
  virtual bool is_completed() = 0;
};
using WorkPtr = std::shared_ptr<Work>;

// The bytes one call moves, from this rank's point of view (docs/sequence-parallel.md, "Counting bytes"):
//   size     : the call's buffer, as nccl-tests' "size" column: the larger of its input and output;
//   sent     : bytes this rank puts on the wire for other ranks;
//   received : bytes arriving at this rank from other ranks.
// sent/received follow nccl-tests' bus-bandwidth factors, so they do not depend on the algorithm a library picks:
// all_gather and reduce_scatter (N-1)/N of the whole buffer (exactly: the blocks of the other ranks), all_reduce
// 2(N-1)/N, all_to_all the blocks addressed to / coming from other ranks, broadcast and reduce the buffer once
// (root sends / root receives), send/recv their message. Nothing a rank "moves" to itself counts.
struct Traffic {
  int64_t size = 0, sent = 0, received = 0;
};

// Call and byte counters per operation kind; tests use them to prove "one collective per layer" and to compare
// the bytes a strategy moves with its formula.
struct OpCounters {
  static constexpr size_t kOps = static_cast<size_t>(CollectiveOp::kCount);
  std::array<int64_t, kOps> calls{};
  std::array<int64_t, kOps> bytes{};           // Traffic::size summed over calls
  std::array<int64_t, kOps> bytes_sent{};      // Traffic::sent summed over calls
  std::array<int64_t, kOps> bytes_received{};  // Traffic::received summed over calls
  int64_t calls_of(CollectiveOp op) const { return calls[static_cast<size_t>(op)]; }
  int64_t bytes_of(CollectiveOp op) const { return bytes[static_cast<size_t>(op)]; }
  int64_t sent_of(CollectiveOp op) const { return bytes_sent[static_cast<size_t>(op)]; }
  int64_t received_of(CollectiveOp op) const { return bytes_received[static_cast<size_t>(op)]; }
  int64_t total_calls() const;
  int64_t total_sent() const;
  int64_t total_received() const;
  OpCounters& operator+=(const OpCounters& other);
  OpCounters operator-(const OpCounters& before) const;  // what happened since the snapshot `before`
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
  // One send and one receive issued as a group (NCCL: ncclGroupStart/End): a ring shift or a halo swap where every
  // rank sends and receives cannot deadlock, whatever order the peers post in. dst or src = -1: that half is
  // skipped (the borders of a chain). Counted as one send_recv call.
  virtual WorkPtr send_recv(const torch::Tensor& send_tensor, int dst, torch::Tensor& recv_tensor, int src,
                            int tag = 0) = 0;
  // Rank r's `input` holds size() consecutive blocks, block q (send_counts[q] elements) for rank q; `output` receives
  // size() blocks, block q (recv_counts[q] elements) from rank q. Counts may differ between ranks and be zero, but
  // recv_counts[q] on rank r must equal send_counts[r] on rank q.
  virtual WorkPtr all_to_all(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& send_counts,
                             const std::vector<int64_t>& recv_counts) = 0;
  virtual WorkPtr barrier() = 0;
  // A new communicator over the same ranks whose traffic cannot be confused with this one's (MPI_Comm_dup).
  virtual std::shared_ptr<Communicator> duplicate(const std::string& name) const = 0;
  // Collective: splits the ranks into communicators by `color`, ordered by `key` (MPI_Comm_split); returns this
  // rank's. Same backend as this one.
  virtual std::shared_ptr<Communicator> split(int color, int key, const std::string& name) const = 0;

  // A sub-communicator made once by split(color, key) and kept under `name` (e.g. the Ulysses groups of a hybrid
  // strategy). The first call with a name is collective over this communicator; later calls return the same one.
  const std::shared_ptr<Communicator>& subgroup(const std::string& name, int color, int key);

  const OpCounters& counters() const { return counters_; }
  // This communicator's counters plus those of its subgroups (recursively): all traffic of one group.
  OpCounters counters_with_subgroups() const;
  void reset_counters();  // also the subgroups'
  double timeout_seconds() const { return timeout_s_; }
  void set_timeout_seconds(double seconds) { timeout_s_ = seconds; }

 protected:
  Communicator(std::string name, double timeout_s) : name_(std::move(name)), timeout_s_(timeout_s) {}
  // Counts one call of `op` moving `traffic`; returns the call's sequence number (for error messages).
  int64_t count_call(CollectiveOp op, const Traffic& traffic);

 private:
  std::string name_;
  double timeout_s_;
  OpCounters counters_;
  int64_t sequence_ = 0;
  std::map<std::string, std::shared_ptr<Communicator>> subgroups_;
};
using CommPtr = std::shared_ptr<Communicator>;

// The Traffic of each operation (the definitions above), computed in one place for every backend. `element` is the
// element size in bytes; counts are in elements.
namespace traffic {
Traffic all_gather(const std::vector<int64_t>& counts, int rank, int64_t element);
Traffic reduce_scatter(const std::vector<int64_t>& counts, int rank, int64_t element);
Traffic all_reduce(int64_t bytes, int ranks);
// broadcast (the root sends), reduce (the non-roots send), send: nothing moves on a one-rank communicator.
Traffic rooted(int64_t bytes, int ranks, bool sends);
Traffic received(int64_t bytes);            // recv
Traffic send_recv(int64_t sent_bytes, int64_t received_bytes);
Traffic all_to_all(const std::vector<int64_t>& send_counts, const std::vector<int64_t>& recv_counts, int rank,
                   int64_t element);
}  // namespace traffic

// Blocking helpers on top of the interface.
// Concatenates every rank's `local` along dim 0 (ranks may hold different numbers of rows).
torch::Tensor all_gather_rows(Communicator& comm, const torch::Tensor& local, const std::vector<int64_t>& rows);
// Element counts for a tensor whose dim-0 rows are split as `rows` (each row has `row_numel` elements).
std::vector<int64_t> rows_to_counts(const std::vector<int64_t>& rows, int64_t row_numel);

}  // namespace spvit::dist

// A Communicator that forwards every call to another one and records, per operation kind, the calls, the bytes
// and the wall time spent issuing the call and waiting for it. Benchmarks wrap a grid's communicators with it to
// say how much of a phase was communication — including time spent waiting for a slower peer, which is what a
// rank loses to communication. Not thread-safe: on CPU the collectives are issued and waited for on the thread
// that runs forward and backward (LibTorch's autograd runs CPU graphs on the calling thread).
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "spvit/core/timer.h"
#include "spvit/dist/communicator.h"

namespace spvit::dist {

// One call recorded while tracing (spvit bench step --trace): what a replay needs to issue the same call.
struct TraceEvent {
  CollectiveOp op;
  std::string comm;    // the communicator's name ("seq", "data", "world", their duplicates and subgroups)
  int ranks = 1;       // its size
  int64_t bytes = 0;   // nccl-tests' size of the call (dist::traffic)
  int64_t sent = 0, received = 0;
  std::string phase;   // the step phase it belongs to (filled in by whoever marks phases)
};

struct CommStats {
  static constexpr size_t kOps = static_cast<size_t>(CollectiveOp::kCount);
  bool tracing = false;             // record every call in `trace`
  std::vector<TraceEvent> trace;
  std::array<int64_t, kOps> calls{}, bytes{}, bytes_sent{}, bytes_received{};
  std::array<double, kOps> seconds{};
  // Adds what happened between the snapshots `before` and `after` of some stats.
  void add(const CommStats& after, const CommStats& before) {
    for (size_t k = 0; k < kOps; ++k) {
      calls[k] += after.calls[k] - before.calls[k];
      bytes[k] += after.bytes[k] - before.bytes[k];
      bytes_sent[k] += after.bytes_sent[k] - before.bytes_sent[k];
      bytes_received[k] += after.bytes_received[k] - before.bytes_received[k];
      seconds[k] += after.seconds[k] - before.seconds[k];
    }
  }
  double total_seconds() const {
    double s = 0;
    for (double x : seconds) s += x;
    return s;
  }
};

class TimedCommunicator : public Communicator {
 public:
  // `stats` may be shared by several communicators (their duplicates share it too).
  TimedCommunicator(CommPtr inner, std::shared_ptr<CommStats> stats)
      : Communicator(inner->name(), inner->timeout_seconds()), inner_(std::move(inner)), stats_(std::move(stats)) {}

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }

  WorkPtr all_gather(const torch::Tensor& input, torch::Tensor& output,
                           const std::vector<int64_t>& counts) override {
    return timed(CollectiveOp::AllGather, [&] { return inner_->all_gather(input, output, counts); });
  }
  WorkPtr reduce_scatter(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts,
                               ReduceOp op) override {
    return timed(CollectiveOp::ReduceScatter, [&] { return inner_->reduce_scatter(input, output, counts, op); });
  }
  WorkPtr all_reduce(torch::Tensor& tensor, ReduceOp op) override {
    return timed(CollectiveOp::AllReduce, [&] { return inner_->all_reduce(tensor, op); });
  }
  WorkPtr reduce(torch::Tensor& tensor, int root, ReduceOp op) override {
    return timed(CollectiveOp::Reduce, [&] { return inner_->reduce(tensor, root, op); });
  }
  WorkPtr broadcast(torch::Tensor& tensor, int root) override {
    return timed(CollectiveOp::Broadcast, [&] { return inner_->broadcast(tensor, root); });
  }
  WorkPtr send(const torch::Tensor& tensor, int dst, int tag) override {
    return timed(CollectiveOp::Send, [&] { return inner_->send(tensor, dst, tag); });
  }
  WorkPtr recv(torch::Tensor& tensor, int src, int tag) override {
    return timed(CollectiveOp::Recv, [&] { return inner_->recv(tensor, src, tag); });
  }
  WorkPtr send_recv(const torch::Tensor& send_tensor, int dst, torch::Tensor& recv_tensor, int src, int tag) override {
    return timed(CollectiveOp::SendRecv, [&] { return inner_->send_recv(send_tensor, dst, recv_tensor, src, tag); });
  }
  WorkPtr all_to_all(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& send_counts,
                     const std::vector<int64_t>& recv_counts) override {
    return timed(CollectiveOp::AllToAll, [&] { return inner_->all_to_all(input, output, send_counts, recv_counts); });
  }
  WorkPtr barrier() override {
    return timed(CollectiveOp::Barrier, [&] { return inner_->barrier(); });
  }
  std::shared_ptr<Communicator> duplicate(const std::string& name) const override {
    return std::make_shared<TimedCommunicator>(inner_->duplicate(name), stats_);
  }
  std::shared_ptr<Communicator> split(int color, int key, const std::string& name) const override {
    return std::make_shared<TimedCommunicator>(inner_->split(color, key, name), stats_);
  }

 private:
  class TimedWork : public Work {
   public:
    TimedWork(WorkPtr inner, std::shared_ptr<CommStats> stats, size_t op)
        : inner_(std::move(inner)), stats_(std::move(stats)), op_(op) {}
    void wait() override {
      Stopwatch watch;
      inner_->wait();
      stats_->seconds[op_] += watch.seconds();
    }
    bool is_completed() override { return inner_->is_completed(); }

   private:
    WorkPtr inner_;
    std::shared_ptr<CommStats> stats_;
    size_t op_;
  };

  template <typename Issue>
  WorkPtr timed(CollectiveOp op, Issue&& issue) {
    const auto k = static_cast<size_t>(op);
    const OpCounters before = inner_->counters();
    Stopwatch watch;
    auto work = issue();
    stats_->seconds[k] += watch.seconds();
    const OpCounters added = inner_->counters() - before;
    stats_->calls[k] += added.calls[k];
    stats_->bytes[k] += added.bytes[k];
    stats_->bytes_sent[k] += added.bytes_sent[k];
    stats_->bytes_received[k] += added.bytes_received[k];
    // This wrapper's own counters mirror the inner ones, so code that reads counters() sees the traffic too.
    count_call(op, Traffic{added.bytes[k], added.bytes_sent[k], added.bytes_received[k]});
    if (stats_->tracing) {
      stats_->trace.push_back(
          {op, name(), size(), added.bytes[k], added.bytes_sent[k], added.bytes_received[k], std::string()});
    }
    return std::make_shared<TimedWork>(std::move(work), stats_, k);
  }

  CommPtr inner_;
  std::shared_ptr<CommStats> stats_;
};

}  // namespace spvit::dist

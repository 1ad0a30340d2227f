#include "spvit/dist/communicator.h"

#include <algorithm>

#include "spvit/core/error.h"

namespace spvit::dist {

const char* op_name(CollectiveOp op) {
  switch (op) {
    case CollectiveOp::AllGather: return "all_gather";
    case CollectiveOp::ReduceScatter: return "reduce_scatter";
    case CollectiveOp::AllReduce: return "all_reduce";
    case CollectiveOp::Reduce: return "reduce";
    case CollectiveOp::Broadcast: return "broadcast";
    case CollectiveOp::Send: return "send";
    case CollectiveOp::Recv: return "recv";
    case CollectiveOp::Barrier: return "barrier";
    case CollectiveOp::AllToAll: return "all_to_all";
    case CollectiveOp::SendRecv: return "send_recv";
    case CollectiveOp::kCount: break;
  }
  return "unknown";
}

int64_t OpCounters::total_calls() const {
  int64_t n = 0;
  for (auto c : calls) n += c;
  return n;
}
int64_t OpCounters::total_sent() const {
  int64_t n = 0;
  for (auto c : bytes_sent) n += c;
  return n;
}
int64_t OpCounters::total_received() const {
  int64_t n = 0;
  for (auto c : bytes_received) n += c;
  return n;
}

OpCounters& OpCounters::operator+=(const OpCounters& other) {
  for (size_t k = 0; k < kOps; ++k) {
    calls[k] += other.calls[k];
    bytes[k] += other.bytes[k];
    bytes_sent[k] += other.bytes_sent[k];
    bytes_received[k] += other.bytes_received[k];
  }
  return *this;
}

OpCounters OpCounters::operator-(const OpCounters& before) const {
  OpCounters d = *this;
  for (size_t k = 0; k < kOps; ++k) {
    d.calls[k] -= before.calls[k];
    d.bytes[k] -= before.bytes[k];
    d.bytes_sent[k] -= before.bytes_sent[k];
    d.bytes_received[k] -= before.bytes_received[k];
  }
  return d;
}

int64_t Communicator::count_call(CollectiveOp op, const Traffic& traffic) {
  const auto k = static_cast<size_t>(op);
  counters_.calls[k] += 1;
  counters_.bytes[k] += traffic.size;
  counters_.bytes_sent[k] += traffic.sent;
  counters_.bytes_received[k] += traffic.received;
  return ++sequence_;
}

const CommPtr& Communicator::subgroup(const std::string& name, int color, int key) {
  auto it = subgroups_.find(name);
  if (it == subgroups_.end()) it = subgroups_.emplace(name, split(color, key, this->name() + "/" + name)).first;
  return it->second;
}

OpCounters Communicator::counters_with_subgroups() const {
  OpCounters total = counters_;
  for (const auto& [name, group] : subgroups_) total += group->counters_with_subgroups();
  return total;
}

void Communicator::reset_counters() {
  counters_ = OpCounters{};
  for (auto& [name, group] : subgroups_) group->reset_counters();
}

namespace traffic {
namespace {
int64_t sum(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (auto x : v) s += x;
  return s;
}
}  // namespace

Traffic all_gather(const std::vector<int64_t>& counts, int rank, int64_t element) {
  const int64_t total = sum(counts) * element, others = total - counts.at(static_cast<size_t>(rank)) * element;
  return {total, others, others};
}

Traffic reduce_scatter(const std::vector<int64_t>& counts, int rank, int64_t element) {
  return all_gather(counts, rank, element);  // the same blocks, travelling the other way
}

Traffic all_reduce(int64_t bytes, int ranks) {
  const int64_t moved = ranks > 1 ? 2 * bytes * (ranks - 1) / ranks : 0;
  return {bytes, moved, moved};
}

Traffic rooted(int64_t bytes, int ranks, bool sends) {
  if (ranks <= 1) return {bytes, 0, 0};
  return {bytes, sends ? bytes : 0, sends ? 0 : bytes};
}

Traffic received(int64_t bytes) { return {bytes, 0, bytes}; }

Traffic send_recv(int64_t sent_bytes, int64_t received_bytes) {
  return {std::max(sent_bytes, received_bytes), sent_bytes, received_bytes};
}

Traffic all_to_all(const std::vector<int64_t>& send_counts, const std::vector<int64_t>& recv_counts, int rank,
                   int64_t element) {
  const auto me = static_cast<size_t>(rank);
  const int64_t in = sum(send_counts) * element, out = sum(recv_counts) * element;
  return {std::max(in, out), in - send_counts.at(me) * element, out - recv_counts.at(me) * element};
}

}  // namespace traffic

std::vector<int64_t> rows_to_counts(const std::vector<int64_t>& rows, int64_t row_numel) {
  std::vector<int64_t> counts(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) counts[i] = rows[i] * row_numel;
  return counts;
}

torch::Tensor all_gather_rows(Communicator& comm, const torch::Tensor& local, const std::vector<int64_t>& rows) {
  SPVIT_CHECK(static_cast<int>(rows.size()) == comm.size(), "all_gather_rows: ", rows.size(),
              " row counts for a communicator of ", comm.size(), " ranks");
  SPVIT_CHECK(local.dim() >= 1 && local.size(0) == rows[comm.rank()], "all_gather_rows: rank ", comm.rank(),
              " holds ", local.dim() ? local.size(0) : 0, " rows but the split says ", rows[comm.rank()]);
  auto in = local.contiguous();
  int64_t row_numel = 1;
  for (int64_t d = 1; d < in.dim(); ++d) row_numel *= in.size(d);
  int64_t total = 0;
  for (auto r : rows) total += r;
  auto shape = in.sizes().vec();
  shape[0] = total;
  auto out = torch::empty(shape, in.options());
  comm.all_gather(in, out, rows_to_counts(rows, row_numel))->wait();
  return out;
}

}  // namespace spvit::dist

#include "spvit/dist/communicator.h"

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
    case CollectiveOp::kCount: break;
  }
  return "unknown";
}

int64_t Communicator::count_call(CollectiveOp op, int64_t bytes) {
  counters_.calls[static_cast<size_t>(op)] += 1;
  counters_.bytes[static_cast<size_t>(op)] += bytes;
  return ++sequence_;
}

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

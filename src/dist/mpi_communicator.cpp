#include "spvit/dist/mpi_communicator.h"

#include <array>
#include <climits>
#include <numeric>
#include <sstream>

#include "mpi_work.h"
#include "spvit/core/error.h"

namespace spvit::dist {
namespace {

bool reducible_by_mpi(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: case torch::kDouble: case torch::kLong: case torch::kInt: case torch::kByte:
    case torch::kChar: case torch::kShort: return true;
    default: return false;
  }
}

MPI_Datatype mpi_type(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return MPI_FLOAT;
    case torch::kDouble: return MPI_DOUBLE;
    case torch::kLong: return MPI_INT64_T;
    case torch::kInt: return MPI_INT32_T;
    case torch::kShort: return MPI_INT16_T;
    case torch::kByte: return MPI_UINT8_T;
    case torch::kChar: return MPI_INT8_T;
    case torch::kBool: return MPI_C_BOOL;
    case torch::kHalf: case torch::kBFloat16: return MPI_UINT16_T;  // moved as raw 16-bit words
    default: SPVIT_THROW(CommError, "MPI communicator: unsupported dtype ", c10::toString(t));
  }
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: case ReduceOp::Avg: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_SUM;
}

// The dtype the MPI buffer uses: reductions of half/bfloat16 run in float32 (MPI has no 16-bit float sum).
torch::ScalarType wire_dtype(torch::ScalarType t, bool reduction) {
  if (reduction && !reducible_by_mpi(t)) {
    SPVIT_CHECK(t == torch::kHalf || t == torch::kBFloat16, "MPI communicator cannot reduce dtype ",
                c10::toString(t));
    return torch::kFloat;
  }
  return t;
}

// A CPU contiguous tensor MPI can use directly for `user`: `user` itself when possible, else a host staging buffer
// (pinned for GPU tensors) holding a copy of it when `copy_in`.
torch::Tensor host_buffer(const torch::Tensor& user, bool reduction, bool copy_in) {
  const auto dtype = wire_dtype(user.scalar_type(), reduction);
  if (user.device().is_cpu() && user.is_contiguous() && dtype == user.scalar_type()) return user;
  auto options = torch::TensorOptions().dtype(dtype).device(torch::kCPU).pinned_memory(user.is_cuda());
  auto buffer = torch::empty(user.sizes(), options);
  if (copy_in) buffer.copy_(user);
  return buffer;
}

int as_int_count(int64_t n, const char* what) {
  SPVIT_CHECK(n >= 0 && n <= INT_MAX, what, ": element count ", n, " does not fit MPI's int counts");
  return static_cast<int>(n);
}

int64_t nbytes(const torch::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); }

}  // namespace

struct MpiCommunicator::Launch {
  int requests = 1;                        // how many MPI requests the operation uses
  std::function<int(MPI_Request*)> start;  // issues the MPI_I* call(s) into requests[0..n); returns an error code
  std::vector<torch::Tensor> keep_alive;   // buffers MPI reads or writes until completion
  std::function<void()> on_complete;       // averaging, copying out of staging buffers
};

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string name, double timeout_s)
    : Communicator(std::move(name), timeout_s),
      comm_(comm),
      owned_(comm != MPI_COMM_WORLD && comm != MPI_COMM_SELF) {
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owned_ && !finalized) MPI_Comm_free(&comm_);
}

WorkPtr MpiCommunicator::collective(CollectiveOp op, const Traffic& traffic, Launch launch) {
  const int64_t seq = count_call(op, traffic);
  std::ostringstream what;
  what << op_name(op) << " #" << seq << " on communicator '" << name() << "' (rank " << rank_ << " of " << size_
       << ", " << traffic.size << " bytes)";
  std::vector<MPI_Request> requests(static_cast<size_t>(launch.requests), MPI_REQUEST_NULL);
  const int rc = launch.start(requests.data());
  if (rc != MPI_SUCCESS) SPVIT_THROW(CommError, what.str(), " could not start: ", mpi_error_string(rc));
  return std::make_shared<MpiWork>(std::move(requests), std::move(launch.keep_alive), std::move(launch.on_complete), what.str(),
                                   timeout_seconds());
}

void MpiCommunicator::check_counts(const char* what, const std::vector<int64_t>& counts) const {
  SPVIT_CHECK(static_cast<int>(counts.size()) == size_, what, " on '", name(), "': ", counts.size(),
              " counts given for ", size_, " ranks");
}

WorkPtr MpiCommunicator::all_gather(const torch::Tensor& input, torch::Tensor& output,
                                    const std::vector<int64_t>& counts) {
  check_counts("all_gather", counts);
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  SPVIT_CHECK(input.numel() == counts[rank_], "all_gather on '", name(), "': rank ", rank_, " sends ",
              input.numel(), " elements but counts say ", counts[rank_]);
  SPVIT_CHECK(output.numel() == total, "all_gather on '", name(), "': output holds ", output.numel(),
              " elements, the counts sum to ", total);
  SPVIT_CHECK(input.scalar_type() == output.scalar_type(), "all_gather: input and output dtypes differ");
  auto send = host_buffer(input, false, true);
  auto recv = host_buffer(output, false, false);
  // MPI reads the count/displacement arrays until completion, so they live in the Work.
  auto layout = std::make_shared<std::pair<std::vector<int>, std::vector<int>>>();
  int64_t displacement = 0;
  for (auto c : counts) {
    layout->first.push_back(as_int_count(c, "all_gather"));
    layout->second.push_back(as_int_count(displacement, "all_gather"));
    displacement += c;
  }
  const MPI_Datatype type = mpi_type(send.scalar_type());
  Launch launch;
  launch.start = [=](MPI_Request* r) {
    return MPI_Iallgatherv(send.data_ptr(), layout->first[rank_], type, recv.data_ptr(), layout->first.data(),
                           layout->second.data(), type, comm_, r);
  };
  launch.keep_alive = {send, recv};
  torch::Tensor user = output;
  launch.on_complete = [layout, recv, user]() mutable {
    if (!recv.is_same(user)) user.copy_(recv);
  };
  return collective(CollectiveOp::AllGather, traffic::all_gather(counts, rank_, output.element_size()),
                    std::move(launch));
}

WorkPtr MpiCommunicator::reduce_scatter(const torch::Tensor& input, torch::Tensor& output,
                                        const std::vector<int64_t>& counts, ReduceOp op) {
  check_counts("reduce_scatter", counts);
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  SPVIT_CHECK(input.numel() == total, "reduce_scatter on '", name(), "': input holds ", input.numel(),
              " elements, the counts sum to ", total);
  SPVIT_CHECK(output.numel() == counts[rank_], "reduce_scatter on '", name(), "': rank ", rank_, " receives into ",
              output.numel(), " elements but counts say ", counts[rank_]);
  auto send = host_buffer(input, true, true);
  auto recv = host_buffer(output, true, false);
  auto recv_counts = std::make_shared<std::vector<int>>();
  for (auto c : counts) recv_counts->push_back(as_int_count(c, "reduce_scatter"));
  const MPI_Datatype type = mpi_type(send.scalar_type());
  const MPI_Op mop = mpi_op(op);
  Launch launch;
  launch.start = [=](MPI_Request* r) {
    return MPI_Ireduce_scatter(send.data_ptr(), recv.data_ptr(), recv_counts->data(), type, mop, comm_, r);
  };
  launch.keep_alive = {send, recv};
  torch::Tensor user = output;
  const int n = size_;
  launch.on_complete = [recv_counts, recv, user, op, n]() mutable {
    if (op == ReduceOp::Avg) recv.div_(n);
    if (!recv.is_same(user)) user.copy_(recv);
  };
  return collective(CollectiveOp::ReduceScatter, traffic::reduce_scatter(counts, rank_, input.element_size()),
                    std::move(launch));
}

WorkPtr MpiCommunicator::all_reduce(torch::Tensor& tensor, ReduceOp op) {
  auto buffer = host_buffer(tensor, true, true);
  const int count = as_int_count(buffer.numel(), "all_reduce");
  const MPI_Datatype type = mpi_type(buffer.scalar_type());
  const MPI_Op mop = mpi_op(op);
  Launch launch;
  launch.start = [=](MPI_Request* r) {
    return MPI_Iallreduce(MPI_IN_PLACE, buffer.data_ptr(), count, type, mop, comm_, r);
  };
  launch.keep_alive = {buffer};
  torch::Tensor user = tensor;
  const int n = size_;
  launch.on_complete = [buffer, user, op, n]() mutable {
    if (op == ReduceOp::Avg) buffer.div_(n);
    if (!buffer.is_same(user)) user.copy_(buffer);
  };
  return collective(CollectiveOp::AllReduce, traffic::all_reduce(nbytes(tensor), size_), std::move(launch));
}

WorkPtr MpiCommunicator::reduce(torch::Tensor& tensor, int root, ReduceOp op) {
  SPVIT_CHECK(root >= 0 && root < size_, "reduce on '", name(), "': root ", root, " is not a rank of ", size_);
  auto buffer = host_buffer(tensor, true, true);
  const int count = as_int_count(buffer.numel(), "reduce");
  const MPI_Datatype type = mpi_type(buffer.scalar_type());
  const MPI_Op mop = mpi_op(op);
  const bool is_root = rank_ == root;
  Launch launch;
  launch.start = [=](MPI_Request* r) {
    return MPI_Ireduce(is_root ? MPI_IN_PLACE : buffer.data_ptr(), is_root ? buffer.data_ptr() : nullptr, count,
                       type, mop, root, comm_, r);
  };
  launch.keep_alive = {buffer};
  torch::Tensor user = tensor;
  const int n = size_;
  launch.on_complete = [buffer, user, op, n, is_root]() mutable {
    if (!is_root) return;
    if (op == ReduceOp::Avg) buffer.div_(n);
    if (!buffer.is_same(user)) user.copy_(buffer);
  };
  return collective(CollectiveOp::Reduce, traffic::rooted(nbytes(tensor), size_, !is_root), std::move(launch));
}

WorkPtr MpiCommunicator::broadcast(torch::Tensor& tensor, int root) {
  SPVIT_CHECK(root >= 0 && root < size_, "broadcast on '", name(), "': root ", root, " is not a rank of ", size_);
  auto buffer = host_buffer(tensor, false, rank_ == root);
  const int count = as_int_count(buffer.numel(), "broadcast");
  const MPI_Datatype type = mpi_type(buffer.scalar_type());
  Launch launch;
  launch.start = [=](MPI_Request* r) { return MPI_Ibcast(buffer.data_ptr(), count, type, root, comm_, r); };
  launch.keep_alive = {buffer};
  torch::Tensor user = tensor;
  launch.on_complete = [buffer, user]() mutable {
    if (!buffer.is_same(user)) user.copy_(buffer);
  };
  return collective(CollectiveOp::Broadcast, traffic::rooted(nbytes(tensor), size_, rank_ == root), std::move(launch));
}

WorkPtr MpiCommunicator::send(const torch::Tensor& tensor, int dst, int tag) {
  SPVIT_CHECK(dst >= 0 && dst < size_, "send on '", name(), "': destination ", dst, " is not a rank of ", size_);
  auto buffer = host_buffer(tensor, false, true);
  const int count = as_int_count(buffer.numel(), "send");
  const MPI_Datatype type = mpi_type(buffer.scalar_type());
  Launch launch;
  launch.start = [=](MPI_Request* r) { return MPI_Isend(buffer.data_ptr(), count, type, dst, tag, comm_, r); };
  launch.keep_alive = {buffer};
  return collective(CollectiveOp::Send, traffic::rooted(nbytes(tensor), 2, true), std::move(launch));
}

WorkPtr MpiCommunicator::recv(torch::Tensor& tensor, int src, int tag) {
  SPVIT_CHECK(src >= 0 && src < size_, "recv on '", name(), "': source ", src, " is not a rank of ", size_);
  auto buffer = host_buffer(tensor, false, false);
  const int count = as_int_count(buffer.numel(), "recv");
  const MPI_Datatype type = mpi_type(buffer.scalar_type());
  Launch launch;
  launch.start = [=](MPI_Request* r) { return MPI_Irecv(buffer.data_ptr(), count, type, src, tag, comm_, r); };
  launch.keep_alive = {buffer};
  torch::Tensor user = tensor;
  launch.on_complete = [buffer, user]() mutable {
    if (!buffer.is_same(user)) user.copy_(buffer);
  };
  return collective(CollectiveOp::Recv, traffic::received(nbytes(tensor)), std::move(launch));
}

WorkPtr MpiCommunicator::send_recv(const torch::Tensor& send_tensor, int dst, torch::Tensor& recv_tensor, int src,
                                   int tag) {
  SPVIT_CHECK(dst >= -1 && dst < size_ && src >= -1 && src < size_, "send_recv on '", name(), "': peers ", dst,
              " and ", src, " are not ranks of ", size_, " (or -1 for none)");
  Launch launch;
  launch.requests = 2;
  torch::Tensor out, in;
  int send_count = 0, recv_count = 0;
  MPI_Datatype send_type = MPI_BYTE, recv_type = MPI_BYTE;
  if (dst >= 0) {
    out = host_buffer(send_tensor, false, true);
    send_count = as_int_count(out.numel(), "send_recv");
    send_type = mpi_type(out.scalar_type());
    launch.keep_alive.push_back(out);
  }
  if (src >= 0) {
    in = host_buffer(recv_tensor, false, false);
    recv_count = as_int_count(in.numel(), "send_recv");
    recv_type = mpi_type(in.scalar_type());
    launch.keep_alive.push_back(in);
    torch::Tensor user = recv_tensor;
    launch.on_complete = [in, user]() mutable {
      if (!in.is_same(user)) user.copy_(in);
    };
  }
  launch.start = [=](MPI_Request* r) {
    int rc = MPI_SUCCESS;
    if (src >= 0) rc = MPI_Irecv(in.data_ptr(), recv_count, recv_type, src, tag, comm_, &r[0]);
    if (rc == MPI_SUCCESS && dst >= 0) rc = MPI_Isend(out.data_ptr(), send_count, send_type, dst, tag, comm_, &r[1]);
    return rc;
  };
  const int64_t sent = dst >= 0 ? nbytes(send_tensor) : 0, received = src >= 0 ? nbytes(recv_tensor) : 0;
  return collective(CollectiveOp::SendRecv, traffic::send_recv(sent, received), std::move(launch));
}

WorkPtr MpiCommunicator::all_to_all(const torch::Tensor& input, torch::Tensor& output,
                                    const std::vector<int64_t>& send_counts, const std::vector<int64_t>& recv_counts) {
  check_counts("all_to_all (send counts)", send_counts);
  check_counts("all_to_all (receive counts)", recv_counts);
  const int64_t send_total = std::accumulate(send_counts.begin(), send_counts.end(), int64_t{0});
  const int64_t recv_total = std::accumulate(recv_counts.begin(), recv_counts.end(), int64_t{0});
  SPVIT_CHECK(input.numel() == send_total, "all_to_all on '", name(), "': input holds ", input.numel(),
              " elements, the send counts sum to ", send_total);
  SPVIT_CHECK(output.numel() == recv_total, "all_to_all on '", name(), "': output holds ", output.numel(),
              " elements, the receive counts sum to ", recv_total);
  SPVIT_CHECK(input.scalar_type() == output.scalar_type(), "all_to_all: input and output dtypes differ");
  auto send = host_buffer(input, false, true);
  auto recv = host_buffer(output, false, false);
  // counts and displacements, sending then receiving; MPI reads them until completion.
  auto layout = std::make_shared<std::array<std::vector<int>, 4>>();
  int64_t send_at = 0, recv_at = 0;
  for (int r = 0; r < size_; ++r) {
    (*layout)[0].push_back(as_int_count(send_counts[r], "all_to_all"));
    (*layout)[1].push_back(as_int_count(send_at, "all_to_all"));
    (*layout)[2].push_back(as_int_count(recv_counts[r], "all_to_all"));
    (*layout)[3].push_back(as_int_count(recv_at, "all_to_all"));
    send_at += send_counts[r];
    recv_at += recv_counts[r];
  }
  const MPI_Datatype type = mpi_type(send.scalar_type());
  Launch launch;
  launch.start = [=](MPI_Request* r) {
    auto& l = *layout;
    return MPI_Ialltoallv(send.data_ptr(), l[0].data(), l[1].data(), type, recv.data_ptr(), l[2].data(), l[3].data(),
                          type, comm_, r);
  };
  launch.keep_alive = {send, recv};
  torch::Tensor user = output;
  launch.on_complete = [layout, recv, user]() mutable {
    if (!recv.is_same(user)) user.copy_(recv);
  };
  return collective(CollectiveOp::AllToAll, traffic::all_to_all(send_counts, recv_counts, rank_, input.element_size()),
                    std::move(launch));
}

WorkPtr MpiCommunicator::barrier() {
  Launch launch;
  launch.start = [this](MPI_Request* r) { return MPI_Ibarrier(comm_, r); };
  return collective(CollectiveOp::Barrier, Traffic{}, std::move(launch));
}

CommPtr MpiCommunicator::duplicate(const std::string& name) const {
  MPI_Comm dup = MPI_COMM_NULL;
  const int rc = MPI_Comm_dup(comm_, &dup);
  if (rc != MPI_SUCCESS) SPVIT_THROW(CommError, "MPI_Comm_dup of '", this->name(), "' failed: ", mpi_error_string(rc));
  return std::make_shared<MpiCommunicator>(dup, name, timeout_seconds());
}

CommPtr MpiCommunicator::split(int color, int key, const std::string& name) const {
  MPI_Comm out = MPI_COMM_NULL;
  const int rc = MPI_Comm_split(comm_, color, key, &out);
  if (rc != MPI_SUCCESS) SPVIT_THROW(CommError, "MPI_Comm_split of '", this->name(), "' failed: ", mpi_error_string(rc));
  return std::make_shared<MpiCommunicator>(out, name, timeout_seconds());
}

}  // namespace spvit::dist

// Communicator over an MPI communicator. Works on CPU tensors directly; other devices and dtypes MPI cannot
// reduce (half, bfloat16) are staged through a host buffer (pinned when the tensor lives on a GPU).
#pragma once
#include "spvit/dist/mpi.h"

#include "spvit/dist/communicator.h"

namespace spvit::dist {

class MpiCommunicator : public Communicator {
 public:
  // Takes ownership of `comm` (freed on destruction) unless it is MPI_COMM_WORLD or MPI_COMM_SELF.
  MpiCommunicator(MPI_Comm comm, std::string name, double timeout_s);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MPI_Comm handle() const { return comm_; }

  WorkPtr all_gather(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts) override;
  WorkPtr reduce_scatter(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& counts,
                         ReduceOp op) override;
  WorkPtr all_reduce(torch::Tensor& tensor, ReduceOp op) override;
  WorkPtr reduce(torch::Tensor& tensor, int root, ReduceOp op) override;
  WorkPtr broadcast(torch::Tensor& tensor, int root) override;
  WorkPtr send(const torch::Tensor& tensor, int dst, int tag) override;
  WorkPtr recv(torch::Tensor& tensor, int src, int tag) override;
  WorkPtr send_recv(const torch::Tensor& send_tensor, int dst, torch::Tensor& recv_tensor, int src, int tag) override;
  WorkPtr all_to_all(const torch::Tensor& input, torch::Tensor& output, const std::vector<int64_t>& send_counts,
                     const std::vector<int64_t>& recv_counts) override;
  WorkPtr barrier() override;
  CommPtr duplicate(const std::string& name) const override;
  CommPtr split(int color, int key, const std::string& name) const override;

 private:
  struct Launch;  // what one operation needs to start: buffers, the MPI call, the completion step
  // Every operation goes through here: counts the call, starts it, and wraps the request in a Work.
  WorkPtr collective(CollectiveOp op, const Traffic& traffic, Launch launch);
  void check_counts(const char* what, const std::vector<int64_t>& counts) const;

  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace spvit::dist

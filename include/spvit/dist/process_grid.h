// The 2D process grid: world = N_d data groups x N_s sequence ranks (docs/sequence-parallel.md, "Process grid").
// Rank r -> data index d = r / N_s, sequence index s = r % N_s: a sequence group is N_s consecutive ranks, which
// launchers place on one node, so the per-layer K‖V traffic stays on the fast intra-node links.
#pragma once
#include <functional>
#include <string>

#include "spvit/dist/communicator.h"

namespace spvit::dist {

struct GridShape {
  int data = 0;  // N_d; 0 = world size / seq
  int seq = 1;   // N_s
  // Parses "DxS" (e.g. "2x2"); throws ConfigError naming the text otherwise.
  static GridShape parse(const std::string& text);
  std::string str() const { return std::to_string(data) + "x" + std::to_string(seq); }
};

class ProcessGrid {
 public:
  // Builds the grid over MPI_COMM_WORLD. Checks N_d * N_s == world size before any collective (a clear
  // ConfigError otherwise), then splits the world into the sequence and data communicators.
  // `backend` "nccl" wraps each group's MPI communicator in an NCCL communicator on CUDA device `cuda_device` (CPU
  // tensors still go through MPI); "mpi" keeps MPI for everything (GPU tensors are staged through pinned memory).
  static ProcessGrid create(GridShape shape, double timeout_s, const std::string& backend = "mpi",
                            int cuda_device = -1);
  // A 1x1 grid of this process alone (MPI_COMM_SELF): single-process references inside an MPI job, and tools.
  static ProcessGrid create_self(double timeout_s);
  // The same grid with each communicator replaced by wrap(communicator): e.g. a benchmark's timing wrapper, so the
  // code under measurement runs unchanged on the wrapped group.
  ProcessGrid with_communicators(const std::function<CommPtr(const CommPtr&)>& wrap) const;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  int data_size() const { return shape_.data; }   // N_d
  int seq_size() const { return shape_.seq; }     // N_s
  int data_index() const { return world_rank_ / shape_.seq; }  // d
  int seq_index() const { return world_rank_ % shape_.seq; }   // s
  int local_rank() const { return local_rank_; }   // rank among the processes of this node (GPU selection)
  int local_size() const { return local_size_; }
  GridShape shape() const { return shape_; }

  const CommPtr& world() const { return world_; }
  const CommPtr& seq() const { return seq_; }    // ranks with the same d (one sample's sequence group)
  const CommPtr& data() const { return data_; }  // ranks with the same s
  const std::string& backend() const { return backend_; }  // "mpi" or "nccl"

 private:
  // `base` is an MPI_Comm (kept opaque here so this header does not pull in mpi.h).
  template <typename Comm>
  static ProcessGrid create_on(Comm base, GridShape shape, double timeout_s);
  GridShape shape_;
  int world_rank_ = 0, world_size_ = 1, local_rank_ = 0, local_size_ = 1;
  CommPtr world_, seq_, data_;
  std::string backend_ = "mpi";
};

// Checks a requested grid against a world size and fills in data = 0. Throws ConfigError explaining the mismatch.
GridShape resolve_grid(GridShape requested, int world_size);

}  // namespace spvit::dist

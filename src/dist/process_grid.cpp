#include "spvit/dist/process_grid.h"

#include "spvit/dist/mpi.h"

#include <regex>

#include "mpi_work.h"
#include "spvit/core/error.h"
#include "spvit/dist/mpi_communicator.h"
#include "spvit/dist/nccl_communicator.h"

namespace spvit::dist {

GridShape GridShape::parse(const std::string& text) {
  static const std::regex pattern(R"(^\s*(\d+)\s*[xX]\s*(\d+)\s*$)");
  std::smatch m;
  if (!std::regex_match(text, m, pattern)) {
    SPVIT_THROW(ConfigError, "grid '", text, "' must be DATAxSEQ, e.g. 2x4 (2 data groups of 4 sequence ranks)");
  }
  GridShape g;
  g.data = std::stoi(m[1]);
  g.seq = std::stoi(m[2]);
  if (g.seq < 1) SPVIT_THROW(ConfigError, "grid '", text, "': the sequence size must be at least 1");
  return g;
}

GridShape resolve_grid(GridShape requested, int world_size) {
  if (requested.seq < 1) SPVIT_THROW(ConfigError, "grid.seq = ", requested.seq, " must be at least 1");
  if (requested.data < 0) SPVIT_THROW(ConfigError, "grid.data = ", requested.data, " must be 0 (auto) or positive");
  GridShape g = requested;
  if (g.data == 0) {
    if (world_size % g.seq != 0) {
      SPVIT_THROW(ConfigError, "grid.seq = ", g.seq, " does not divide the world size ", world_size,
                  " (number of MPI ranks): launch a multiple of ", g.seq, " ranks or change grid.seq");
    }
    g.data = world_size / g.seq;
  }
  if (static_cast<int64_t>(g.data) * g.seq != world_size) {
    SPVIT_THROW(ConfigError, "grid ", g.str(), " (data x seq) needs ", static_cast<int64_t>(g.data) * g.seq,
                " ranks but this run has ", world_size,
                " (mpirun -np N): make data * seq equal the number of ranks");
  }
  return g;
}

template <typename Comm>
ProcessGrid ProcessGrid::create_on(Comm base, GridShape shape, double timeout_s) {
  ProcessGrid grid;
  MPI_Comm_rank(base, &grid.world_rank_);
  MPI_Comm_size(base, &grid.world_size_);
  // Validated before any collective: a wrong grid must fail fast and identically on every rank.
  grid.shape_ = resolve_grid(shape, grid.world_size_);

  auto split = [&](int color, int key, const char* what) {
    MPI_Comm out = MPI_COMM_NULL;
    const int rc = MPI_Comm_split(base, color, key, &out);
    if (rc != MPI_SUCCESS) SPVIT_THROW(CommError, "MPI_Comm_split (", what, ") failed: ", mpi_error_string(rc));
    return out;
  };
  const int d = grid.data_index(), s = grid.seq_index();
  MPI_Comm world_dup = MPI_COMM_NULL;
  if (MPI_Comm_dup(base, &world_dup) != MPI_SUCCESS) SPVIT_THROW(CommError, "MPI_Comm_dup failed");
  grid.world_ = std::make_shared<MpiCommunicator>(world_dup, "world", timeout_s);
  grid.seq_ = std::make_shared<MpiCommunicator>(split(d, s, "sequence groups"), "seq", timeout_s);
  grid.data_ = std::make_shared<MpiCommunicator>(split(s, d, "data groups"), "data", timeout_s);

  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(base, MPI_COMM_TYPE_SHARED, grid.world_rank_, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &grid.local_rank_);
  MPI_Comm_size(node, &grid.local_size_);
  MPI_Comm_free(&node);
  return grid;
}

ProcessGrid ProcessGrid::create(GridShape shape, double timeout_s, const std::string& backend, int cuda_device) {
  ProcessGrid grid = create_on(MPI_COMM_WORLD, shape, timeout_s);
  if (backend == "nccl") {
    SPVIT_CHECK(cuda_device >= 0, "the NCCL backend needs a CUDA device");
    // Same order on every rank: world, then seq, then data (each bootstrap is a collective over its group).
    grid.world_ = make_nccl_communicator(grid.world_, "world", timeout_s, cuda_device);
    grid.seq_ = make_nccl_communicator(grid.seq_, "seq", timeout_s, cuda_device);
    grid.data_ = make_nccl_communicator(grid.data_, "data", timeout_s, cuda_device);
    grid.backend_ = "nccl";
  } else {
    SPVIT_CHECK(backend == "mpi", "unknown communication backend '", backend, "' (mpi, nccl)");
  }
  return grid;
}

ProcessGrid ProcessGrid::create_self(double timeout_s) { return create_on(MPI_COMM_SELF, {1, 1}, timeout_s); }

ProcessGrid ProcessGrid::with_communicators(const std::function<CommPtr(const CommPtr&)>& wrap) const {
  ProcessGrid g = *this;
  g.world_ = wrap(world_);
  g.seq_ = wrap(seq_);
  g.data_ = wrap(data_);
  return g;
}

}  // namespace spvit::dist

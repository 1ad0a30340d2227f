// MPI process lifetime: initialisation (thread level SERIALIZED), finalisation, and aborting every rank.
#pragma once

namespace spvit::dist {

// RAII: initialises MPI if nobody has yet, and finalises it on destruction if it initialised it.
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
  int world_rank() const;
  int world_size() const;

 private:
  bool owns_ = false;
};

// Ends the whole job (every rank) with `code`. Used after an unrecoverable error on one rank, so that peers blocked
// in a collective do not wait for it forever. A no-op when MPI is not initialised.
[[noreturn]] void abort_world(int code);

// This process's rank among the MPI processes on its node (MPI_COMM_TYPE_SHARED split of the world): the GPU index a
// rank uses, independent of the launcher's environment variables.
int node_local_rank();
// How many MPI processes of this job run on this node.
int node_local_size();
// The largest `value` over all ranks of the world (a blocking MPI_Allreduce; `value` itself without MPI).
int world_max(int value);

// True when MPI_Init has been called and MPI_Finalize has not.
bool mpi_active();

}  // namespace spvit::dist

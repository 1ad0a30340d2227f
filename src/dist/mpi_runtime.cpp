#include "spvit/dist/mpi_runtime.h"

#include "spvit/dist/mpi.h"

#include <cstdlib>
#include <utility>

#include "spvit/core/error.h"

namespace spvit::dist {

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    // SERIALIZED: collectives may be issued from autograd hooks, always one thread at a time.
    MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    owns_ = true;
  }
  // Errors come back as return codes so they can be turned into exceptions that name the operation.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

MpiRuntime::~MpiRuntime() {
  if (owns_ && mpi_active()) MPI_Finalize();
}

int MpiRuntime::world_rank() const {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int MpiRuntime::world_size() const {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

bool mpi_active() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

namespace {
// (rank, size) within this node's MPI_COMM_TYPE_SHARED split of the world.
std::pair<int, int> node_rank_and_size() {
  if (!mpi_active()) return {0, 1};
  MPI_Comm node = MPI_COMM_NULL;
  int rank = 0, size = 1;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &rank);
  MPI_Comm_size(node, &size);
  MPI_Comm_free(&node);
  return {rank, size};
}
}  // namespace

int node_local_rank() { return node_rank_and_size().first; }
int node_local_size() { return node_rank_and_size().second; }

int world_max(int value) {
  if (!mpi_active()) return value;
  int result = value;
  MPI_Allreduce(&value, &result, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return result;
}

void abort_world(int code) {
  if (mpi_active()) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

}  // namespace spvit::dist

// The NCCL backend: a Communicator over GPU tensors (docs/architecture.md, dist layer).
//
// Each NCCL communicator is bootstrapped over the MPI communicator of the same group (rank 0 makes the unique id and
// broadcasts it over MPI) and keeps that MPI communicator for CPU tensors (metrics, small host reductions), so one
// grid serves both. Collectives run on a dedicated stream per communicator; a Work holds an end event and wait()
// only makes the caller's current stream wait on it — no host synchronisation. A watchdog thread ends the rank,
// naming the operation, when an NCCL call reports an asynchronous error or does not finish within the timeout.
//
// This header has no NCCL or CUDA types, so every build can call it; builds without NCCL throw a ConfigError
// that says how to get one.
#pragma once
#include <memory>
#include <string>

#include "spvit/dist/communicator.h"

namespace spvit::dist {

// True when this build was compiled with CUDA LibTorch and NCCL.
bool nccl_compiled_in();

// An NCCL communicator over the same ranks as `host` (an MpiCommunicator), on CUDA device `device`. Collective over
// `host`: every rank of it must call this together. CPU tensors given to the result go through `host`.
CommPtr make_nccl_communicator(const CommPtr& host, const std::string& name, double timeout_s, int device);

}  // namespace spvit::dist

// Private to src/dist: what the NCCL backend needs beyond the Communicator interface — the owned ncclComm_t, the
// record of one in-flight operation, and the process-wide watchdog that ends the rank when one fails or hangs.
#pragma once
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <memory>
#include <string>

#include "spvit/core/cuda_check.h"

namespace spvit::dist {

// Throws CommError naming the NCCL function, NCCL's reason (and the communicator's last error) and the caller's
// file:line when `status` is neither success nor "in progress" (non-blocking communicators).
void check_nccl(ncclResult_t status, ncclComm_t comm, const char* call, const char* file, int line);

}  // namespace spvit::dist

// SPVIT_CHECK_NCCL(call, comm): see check_nccl. SPVIT_CHECK_COMM_CUDA(call): a CUDA call of the communicator,
// failing with CommError. Macros, so the error names the call site.
#define SPVIT_CHECK_NCCL(call, comm) ::spvit::dist::check_nccl((call), (comm), #call, __FILE__, __LINE__)
#define SPVIT_CHECK_COMM_CUDA(...) SPVIT_CHECK_CUDA_AS(::spvit::CommError, __VA_ARGS__)

namespace spvit::dist {

// Owns an ncclComm_t; shared by the communicator and its in-flight operations so that the watchdog can still ask
// for the communicator's asynchronous error (and abort it) after the Communicator object is gone.
class NcclCommHandle {
 public:
  explicit NcclCommHandle(ncclComm_t comm) : comm_(comm) {}
  ~NcclCommHandle();
  NcclCommHandle(const NcclCommHandle&) = delete;
  NcclCommHandle& operator=(const NcclCommHandle&) = delete;
  ncclComm_t get() const { return comm_; }
  void abort();  // ncclCommAbort: unblocks kernels stuck waiting for a peer

 private:
  ncclComm_t comm_;
  bool aborted_ = false;
};

// One NCCL operation in flight: the event recorded on the communication stream after it, and what to say if it
// fails ("all_gather #12 on communicator 'seq'").
struct PendingNcclOp {
  PendingNcclOp(std::shared_ptr<NcclCommHandle> comm, std::string description, double timeout_s);
  ~PendingNcclOp();
  std::shared_ptr<NcclCommHandle> comm;
  std::string description;
  double timeout_s;
  std::chrono::steady_clock::time_point start;
  cudaEvent_t end = nullptr;
};

// Starts (once) a thread that polls every pending operation: its end event, the communicator's asynchronous NCCL
// error and its age. On an error or a timeout it logs a message naming the operation, aborts the NCCL communicator
// and ends the MPI job — a rank never hangs in a collective a peer will not join.
void watch_nccl_op(std::shared_ptr<PendingNcclOp> op);

}  // namespace spvit::dist

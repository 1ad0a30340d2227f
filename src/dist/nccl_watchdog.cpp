#include "nccl_watchdog.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/dist/mpi_runtime.h"

namespace spvit::dist {

void check_nccl(ncclResult_t status, ncclComm_t comm, const char* call, const char* file, int line) {
  if (status == ncclSuccess || status == ncclInProgress) return;
  const char* last = comm ? ncclGetLastError(comm) : "";
  const bool detail = last != nullptr && *last != '\0';
  throw CommError(detail::with_location(detail::concat(detail::called_function(call), " failed: ",
                                                       ncclGetErrorString(status), detail ? " (" : "",
                                                       detail ? last : "", detail ? ")" : ""),
                                        file, line));
}

NcclCommHandle::~NcclCommHandle() {
  if (!aborted_) ncclCommDestroy(comm_);
}

void NcclCommHandle::abort() {
  if (!aborted_) ncclCommAbort(comm_);
  aborted_ = true;
}

PendingNcclOp::PendingNcclOp(std::shared_ptr<NcclCommHandle> c, std::string d, double t)
    : comm(std::move(c)), description(std::move(d)), timeout_s(t), start(std::chrono::steady_clock::now()) {
  SPVIT_CHECK_COMM_CUDA(cudaEventCreateWithFlags(&end, cudaEventDisableTiming));
}

PendingNcclOp::~PendingNcclOp() {
  if (end) cudaEventDestroy(end);
}

namespace {

class NcclWatchdog {
 public:
  // Deliberately never destroyed: the thread must not be joined during static destruction, when the CUDA runtime
  // may already be gone. By then nothing is pending, so the thread makes no CUDA calls.
  static NcclWatchdog& instance() {
    static auto* watchdog = new NcclWatchdog();
    return *watchdog;
  }

  void watch(std::shared_ptr<PendingNcclOp> op) {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.push_back(std::move(op));
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    wake_.notify_one();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait_for(lock, std::chrono::milliseconds(20), [this] { return !pending_.empty(); });
      std::vector<std::shared_ptr<PendingNcclOp>> still_pending;
      for (auto& op : pending_) {
        if (!finished_or_failed(*op)) still_pending.push_back(op);
      }
      pending_.swap(still_pending);
    }
  }

  // True when the operation completed; ends the job when it failed or timed out.
  static bool finished_or_failed(PendingNcclOp& op) {
    const cudaError_t query = cudaEventQuery(op.end);
    if (query == cudaSuccess) return true;
    if (query != cudaErrorNotReady) fail(op, std::string("CUDA error ") + cudaGetErrorString(query));
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(op.comm->get(), &async);
    if (async != ncclSuccess && async != ncclInProgress) {
      const char* last = ncclGetLastError(op.comm->get());
      fail(op, std::string("NCCL error ") + ncclGetErrorString(async) + (last && *last ? std::string(": ") + last : ""));
    }
    const double age = std::chrono::duration<double>(std::chrono::steady_clock::now() - op.start).count();
    if (age > op.timeout_s) {
      fail(op, "timed out after " + std::to_string(op.timeout_s) + " s (a peer is dead, stuck, or called a "
               "different collective)");
    }
    return false;
  }

  [[noreturn]] static void fail(PendingNcclOp& op, const std::string& reason) {
    log::error("NCCL {}: {}; aborting the communicator and ending this rank", op.description, reason);
    op.comm->abort();
    abort_world(3);
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::shared_ptr<PendingNcclOp>> pending_;
  std::thread thread_;
};

}  // namespace

void watch_nccl_op(std::shared_ptr<PendingNcclOp> op) { NcclWatchdog::instance().watch(std::move(op)); }

}  // namespace spvit::dist

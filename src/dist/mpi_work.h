// Private to src/dist: the Work handle of an MPI non-blocking operation, with the timeout watchdog.
#pragma once
#include "spvit/dist/mpi.h"

#include <functional>
#include <string>
#include <vector>

#include "spvit/dist/communicator.h"

namespace spvit::dist {

std::string mpi_error_string(int code);

class MpiWork : public Work {
 public:
  // `keep_alive` tensors stay referenced until the operation completes; `on_complete` runs once after it does
  // (copies out of staging buffers, averaging).
  // `requests`: the operation's MPI requests (one for a collective, two for a grouped send/receive); it completes
  // when all of them have.
  MpiWork(std::vector<MPI_Request> requests, std::vector<torch::Tensor> keep_alive, std::function<void()> on_complete,
          std::string description, double timeout_s);
  ~MpiWork() override;
  void wait() override;
  bool is_completed() override;

 private:
  void complete();
  std::vector<MPI_Request> requests_;
  std::vector<torch::Tensor> keep_alive_;
  std::function<void()> on_complete_;
  std::string description_;
  double timeout_s_;
  bool done_ = false;
};

}  // namespace spvit::dist

// Test helper for the NCCL watchdog (GPU builds only): a receive no one sends to must end the rank with an error
// naming the operation, not hang.
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/dist/mpi_runtime.h"
#include "spvit/dist/process_grid.h"

int main(int argc, char** argv) {
  spvit::dist::MpiRuntime mpi(&argc, &argv);
  spvit::log::init(mpi.world_rank(), mpi.world_size(), "info");
  try {
    auto grid = spvit::dist::ProcessGrid::create({1, 1}, /*timeout_s=*/2.0, "nccl", 0);
    auto t = torch::zeros({16}, torch::TensorOptions().device(torch::kCUDA, 0));
    auto work = grid.world()->recv(t, 0, 0);  // nobody sends: the watchdog must end this process
    work->wait();
    torch::cuda::synchronize();
    spvit::log::error("the unmatched receive completed");
    return 1;
  } catch (const std::exception& e) {
    spvit::log::error("{}", e.what());
    spvit::dist::abort_world(1);
  }
}

// Test helper: makes a collective that cannot complete, to show the watchdog ends every rank with an error naming
// the operation instead of hanging. Handles errors like the `spvit` app does (log, then abort the job).
//   dead-peer         : rank 1 never joins the all-reduce (as if hung or dead)
//   mismatched-counts : ranks disagree on the all-gather sizes
//   mismatched-calls  : rank 0 issues two all-reduces, rank 1 only one
#include <chrono>
#include <string>
#include <thread>

#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/dist/mpi_runtime.h"
#include "spvit/dist/process_grid.h"

int main(int argc, char** argv) {
  spvit::dist::MpiRuntime mpi(&argc, &argv);
  spvit::log::init(mpi.world_rank(), mpi.world_size(), "info");
  const std::string mode = argc > 1 ? argv[1] : "dead-peer";
  try {
    auto grid = spvit::dist::ProcessGrid::create({0, mpi.world_size()}, /*timeout_s=*/2.0);
    auto& comm = *grid.world();
    const int me = comm.rank();
    if (mode == "dead-peer") {
      if (me == 1) std::this_thread::sleep_for(std::chrono::seconds(60));
      auto x = torch::ones({4});
      comm.all_reduce(x)->wait();
    } else if (mode == "mismatched-counts") {
      auto x = torch::ones({me == 0 ? 4 : 8});
      auto out = torch::empty({me == 0 ? 8 : 16});
      comm.all_gather(x, out, me == 0 ? std::vector<int64_t>{4, 4} : std::vector<int64_t>{8, 8})->wait();
      if (me == 1) std::this_thread::sleep_for(std::chrono::seconds(60));
    } else if (mode == "mismatched-calls") {
      auto x = torch::ones({16});
      comm.all_reduce(x)->wait();
      if (me == 0) comm.all_reduce(x)->wait();
      else std::this_thread::sleep_for(std::chrono::seconds(60));
    } else {
      spvit::log::error("unknown probe mode '{}'", mode);
      return 2;
    }
    spvit::log::error("probe '{}' finished without an error", mode);
    return 0;
  } catch (const std::exception& e) {
    spvit::log::error("{}", e.what());
    spvit::dist::abort_world(3);
  }
}

// GoogleTest main for spvit: initialises MPI (tests may run under mpirun) and understands `--grid DxS`, which the
// MPI tests read through test_grid_shape().
#include <gtest/gtest.h>

#include <string>

#include "spvit/core/logging.h"
#include "spvit/dist/mpi_runtime.h"
#include "test_support.h"

namespace spvit::testing {
namespace {
std::string g_grid;
}
std::string requested_grid() { return g_grid; }
}  // namespace spvit::testing

int main(int argc, char** argv) {
  spvit::dist::MpiRuntime mpi(&argc, &argv);
  spvit::log::init(mpi.world_rank(), mpi.world_size(), "warn");
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--grid") spvit::testing::g_grid = argv[i + 1];
  }
  // Every rank runs every test (collectives need all of them); ranks other than 0 print only failures.
  if (mpi.world_rank() != 0) ::testing::GTEST_FLAG(brief) = true;
  return RUN_ALL_TESTS();
}

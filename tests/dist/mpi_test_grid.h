// The process grid an MPI test binary runs on: --grid DxS, or 1xWORLD when not given.
#pragma once
#include "spvit/dist/mpi.h"
#include "spvit/dist/process_grid.h"
#include "test_support.h"

namespace spvit::testing {

inline const dist::ProcessGrid& test_grid() {
  static const dist::ProcessGrid grid = [] {
    int world = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    const auto text = requested_grid();
    auto shape = text.empty() ? dist::GridShape{0, world} : dist::GridShape::parse(text);
    return dist::ProcessGrid::create(shape, /*timeout_s=*/120);
  }();
  return grid;
}

}  // namespace spvit::testing

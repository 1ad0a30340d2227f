#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs every test (unit tests and the MPI tests with 1-4
# ranks). Extra arguments go to ctest, e.g. `scripts/test.sh -R mpi_grid_2x2`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 "$@"

#!/usr/bin/env bash
# The main job on its built-in default: install, build, then run the sequence-parallel self-test on 2 MPI ranks
# (a small ViT encoder whose token sequence is split over the ranks, checked against a single-process run).
# The result is written to ${OUT_DIR:-out}/selftest.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
OUT_DIR=${OUT_DIR:-out}
mkdir -p "$OUT_DIR"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"${BUILD_DIR:-build}/bin/spvit" info | tee "$OUT_DIR/selftest.txt"
mpirun -np 2 --oversubscribe --bind-to none "${BUILD_DIR:-build}/bin/spvit" selftest sp --grid 1x2 \
  --length 1001 --layers 3 --dtype float64 | tee -a "$OUT_DIR/selftest.txt"
echo "result written to $OUT_DIR/selftest.txt"

#!/usr/bin/env bash
# The main job on its built-in default: install, build (only the `spvit` binary: the tests are scripts/test.sh's),
# then on 2 MPI ranks
#   1. check the sequence-parallel encoder against a single-process run (spvit selftest sp),
#   2. train the tiny ViT + UNETR model on synthetic pathology-like images, each image's token sequence split
#      over the 2 ranks (configs/tiny-cpu.yaml),
#   3. evaluate it on held-out synthetic images: metrics JSON and prediction overlay PNGs.
# Results go to ${OUT_DIR:-runs/tiny-cpu}. The last line gives the wall time of each phase.
set -euo pipefail
cd "$(dirname "$0")/.."
phase_start=$SECONDS
declare -a PHASES=()
phase_done() { PHASES+=("$1 $((SECONDS - phase_start)) s"); phase_start=$SECONDS; }

scripts/install-deps.sh
phase_done install
TARGETS=spvit scripts/build.sh
phase_done build
OUT_DIR=${OUT_DIR:-runs/tiny-cpu}
BIN=${BUILD_DIR:-build}/bin/spvit
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun -np 2 --oversubscribe --bind-to none)
mkdir -p "$OUT_DIR"
"${MPIRUN[@]}" "$BIN" selftest sp --grid 1x2 --length 1001 --layers 3 --dtype float64 | tee "$OUT_DIR/selftest.txt"
phase_done selftest
"${MPIRUN[@]}" "$BIN" train --config configs/tiny-cpu.yaml --set train.out_dir="$OUT_DIR"
phase_done train
"${MPIRUN[@]}" "$BIN" eval --checkpoint "$OUT_DIR/checkpoint.pt" --out "$OUT_DIR/eval"
phase_done eval
echo
echo "selftest:    $OUT_DIR/selftest.txt"
echo "metrics:     $OUT_DIR/metrics.jsonl (training), $OUT_DIR/eval/metrics.json (evaluation)"
echo "overlays:    $(ls "$OUT_DIR"/eval/*_overlay.png | tr '\n' ' ')"
echo "checkpoint:  $OUT_DIR/checkpoint.pt"
echo "demo: $(printf '%s, ' "${PHASES[@]}" | sed 's/, $//')"

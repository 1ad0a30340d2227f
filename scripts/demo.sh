#!/usr/bin/env bash
# The main job on its built-in default: install, build, then on 2 MPI ranks
#   1. check the sequence-parallel encoder against a single-process run (spvit selftest sp),
#   2. train the tiny ViT + UNETR model on synthetic pathology-like images, each image's token sequence split
#      over the 2 ranks (configs/tiny-cpu.yaml),
#   3. evaluate it on held-out synthetic images: metrics JSON and prediction overlay PNGs.
# Results go to ${OUT_DIR:-runs/tiny-cpu}.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
OUT_DIR=${OUT_DIR:-runs/tiny-cpu}
BIN=${BUILD_DIR:-build}/bin/spvit
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun -np 2 --oversubscribe --bind-to none)
mkdir -p "$OUT_DIR"
"${MPIRUN[@]}" "$BIN" selftest sp --grid 1x2 --length 1001 --layers 3 --dtype float64 | tee "$OUT_DIR/selftest.txt"
"${MPIRUN[@]}" "$BIN" train --config configs/tiny-cpu.yaml --set train.out_dir="$OUT_DIR"
"${MPIRUN[@]}" "$BIN" eval --checkpoint "$OUT_DIR/checkpoint.pt" --out "$OUT_DIR/eval"
echo
echo "selftest:    $OUT_DIR/selftest.txt"
echo "metrics:     $OUT_DIR/metrics.jsonl (training), $OUT_DIR/eval/metrics.json (evaluation)"
echo "overlays:    $(ls "$OUT_DIR"/eval/*_overlay.png | tr '\n' ' ')"
echo "checkpoint:  $OUT_DIR/checkpoint.pt"

#!/usr/bin/env bash
# Proof that a refactor left training unchanged: the losses of the steps that follow a fixed checkpoint, printed
# with every digit, so two builds (before and after a change) can be compared line by line with diff.
#
#   scripts/loss-trace.sh checkpoint OUT.pt          writes a checkpoint of the demo config after 10 steps
#   scripts/loss-trace.sh trace CHECKPOINT [STEPS]   resumes from it and prints "step loss" for STEPS (20) steps
#
# Both run configs/tiny-cpu.yaml on 2 MPI ranks (as scripts/demo.sh does) with the binary $BIN (default
# build/bin/spvit). Typical use: write the checkpoint with the old build, trace it with the old and the new build,
# `diff` the two traces (empty = bit-identical losses). The checkpoint holds the weights, so a change in the order
# parameters are created (which changes their random initial values) does not hide or fake a difference.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin/spvit}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun -np 2 --oversubscribe --bind-to none)
WARM_STEPS=10  # == the demo's warmup_steps, the smallest train.steps the config accepts

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
[ $# -ge 2 ] || { usage >&2; exit 2; }
[ -x "$BIN" ] || { echo "loss-trace: no spvit binary at $BIN (build it, or set BIN)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case "$1" in
  checkpoint)
    "${MPIRUN[@]}" "$BIN" train -c configs/tiny-cpu.yaml --set train.steps=$WARM_STEPS \
      --set train.out_dir="$work" --set train.eval_every=0 --set train.progress=off >"$work/log" 2>&1 ||
      { cat "$work/log" >&2; exit 1; }
    cp "$work/checkpoint.pt" "$2"
    echo "loss-trace: wrote $2 (configs/tiny-cpu.yaml after $WARM_STEPS steps)"
    ;;
  trace)
    steps=${3:-20}
    # train.steps is free to change on resume (it reshapes the schedule from here on, identically for both builds).
    "${MPIRUN[@]}" "$BIN" train -c configs/tiny-cpu.yaml --resume "$2" --set train.steps=$((WARM_STEPS + steps)) \
      --set train.out_dir="$work" --set train.eval_every=0 --set train.progress=off >"$work/log" 2>&1 ||
      { cat "$work/log" >&2; exit 1; }
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    print(j["step"], repr(j["loss"]))' "$work/metrics.jsonl"
    ;;
  *) usage >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Outputs that cannot be written: every rank stops with exit code 5 and a message naming the file and the OS reason,
# no MPI abort banner, no stack trace, no temporary file left, and the previous checkpoint intact and loadable.
#   write_failure_test.sh MODE SPVIT WORKDIR [mpirun args...]
#   MODE: inject-checkpoint  the second checkpoint fails at its flush (SPVIT_INJECT_WRITE_ERROR, any filesystem)
#         inject-metrics     the metrics log cannot be appended to (EDQUOT: quota)
#         inject-eval        spvit eval cannot write its overlays (EACCES)
#         tmpfs              out_dir on a tmpfs with room for one checkpoint but not two: a real "No space left on
#                            device" (needs root to mount; fails, does not skip, when it cannot)
set -euo pipefail
MODE=$1 SPVIT=$2 WORK=$3
shift 3
MPIRUN=("$@")
[ ${#MPIRUN[@]} -gt 0 ] || MPIRUN=(mpirun -np 2 --oversubscribe --bind-to none)
OUT=$WORK/run
MOUNTED=""
cleanup() { if [ -n "$MOUNTED" ]; then umount "$MOUNTED" || true; fi; }
trap cleanup EXIT
if mountpoint -q "$OUT" 2>/dev/null; then umount "$OUT"; fi
rm -rf "$WORK" && mkdir -p "$WORK"
TRAIN=("$SPVIT" train -c "$(dirname "$0")/../../configs/tiny-cpu.yaml" --set train.out_dir="$OUT"
       --set model.depth=2 --set model.dim=32 --set data.size=64 --set model.max_tokens=64 --set data.val_samples=2
       --set train.eval_every=0 --set train.checkpoint_every=5 --set train.progress=off --set data.workers=1)
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_write_failure LOG RC PATH_REGEX REASON: the run's exit code and message.
expect_write_failure() {
  local log=$1 rc=$2 path=$3 reason=$4
  cat "$log"
  [ "$rc" -eq 5 ] || fail "exit code $rc, expected 5 (an output could not be written)"
  grep -qE "cannot write '[^']*$path' \\([a-z ]+\\): $reason" "$log" || fail "no message naming $path and '$reason'"
  ! grep -qiE "terminate called|MPI_ABORT|stack trace|core dumped" "$log" || fail "unclean exit"
  ! ls "$OUT"/*.tmp* "$WORK"/eval/*.tmp* >/dev/null 2>&1 || fail "temporary file left behind"
}
# The checkpoint in out_dir is the one of step $1 and loads (spvit eval reads it; its outputs go elsewhere).
expect_checkpoint_of_step() {
  "${MPIRUN[@]}" "$SPVIT" eval --checkpoint "$OUT/checkpoint.pt" --out "$WORK/check-eval" --overlays 0 \
      > "$WORK/check-eval.log" 2>&1 || { cat "$WORK/check-eval.log"; fail "the previous checkpoint does not load"; }
  "${MPIRUN[@]}" "${TRAIN[@]}" --resume --set train.steps="$1" > "$WORK/check-resume.log" 2>&1 ||
      { cat "$WORK/check-resume.log"; fail "resuming from the previous checkpoint failed"; }
  grep -q "resumed from .* at step $1 " "$WORK/check-resume.log" || { cat "$WORK/check-resume.log"; fail "not the checkpoint of step $1"; }
}

case $MODE in
  inject-checkpoint)
    "${MPIRUN[@]}" "${TRAIN[@]}" --set train.steps=5 > "$WORK/first.log" 2>&1 || { cat "$WORK/first.log"; fail "first run"; }
    set +e
    SPVIT_INJECT_WRITE_ERROR=checkpoint.pt "${MPIRUN[@]}" -x SPVIT_INJECT_WRITE_ERROR "${TRAIN[@]}" --resume \
        --set train.steps=15 > "$WORK/run.log" 2>&1
    rc=$?
    set -e
    expect_write_failure "$WORK/run.log" "$rc" "checkpoint\\.pt" "No space left on device"
    expect_checkpoint_of_step 5 ;;
  inject-metrics)
    set +e
    SPVIT_INJECT_WRITE_ERROR=metrics.jsonl:EDQUOT "${MPIRUN[@]}" -x SPVIT_INJECT_WRITE_ERROR "${TRAIN[@]}" \
        --set train.steps=15 > "$WORK/run.log" 2>&1
    rc=$?
    set -e
    expect_write_failure "$WORK/run.log" "$rc" "metrics\\.jsonl" "Disk quota exceeded" ;;
  inject-eval)
    "${MPIRUN[@]}" "${TRAIN[@]}" --set train.steps=5 > "$WORK/first.log" 2>&1 || { cat "$WORK/first.log"; fail "first run"; }
    set +e
    SPVIT_INJECT_WRITE_ERROR=_overlay.png:EACCES "${MPIRUN[@]}" -x SPVIT_INJECT_WRITE_ERROR "$SPVIT" eval \
        --checkpoint "$OUT/checkpoint.pt" --out "$WORK/eval" > "$WORK/run.log" 2>&1
    rc=$?
    set -e
    expect_write_failure "$WORK/run.log" "$rc" "_overlay\\.png" "Permission denied" ;;
  tmpfs)
    # The size of one checkpoint of this model, from a run on the ordinary disk.
    "${MPIRUN[@]}" "${TRAIN[@]}" --set train.steps=5 > "$WORK/first.log" 2>&1 || { cat "$WORK/first.log"; fail "first run"; }
    size=$(stat -c %s "$OUT/checkpoint.pt")
    rm -rf "$OUT" && mkdir -p "$OUT"
    # Room for one checkpoint and the metrics, not for a second checkpoint beside the first (the atomic write
    # needs both while it runs).
    room=$(( size * 3 / 2 ))
    mount -t tmpfs -o size=$room tmpfs "$OUT" || fail "cannot mount a tmpfs at $OUT (this test needs root)"
    MOUNTED=$OUT
    set +e
    "${MPIRUN[@]}" "${TRAIN[@]}" --set train.steps=15 > "$WORK/run.log" 2>&1
    rc=$?
    set -e
    expect_write_failure "$WORK/run.log" "$rc" "checkpoint\\.pt" "No space left on device"
    expect_checkpoint_of_step 5 ;;
  *) fail "unknown mode $MODE" ;;
esac
echo "PASSED: $MODE: exit 5, the file and the OS reason named, nothing left behind"

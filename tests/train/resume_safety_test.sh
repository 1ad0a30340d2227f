#!/usr/bin/env bash
# Resume safety: --resume refuses a checkpoint written with settings that break continuation (naming the keys),
# --allow-changes proceeds with a warning, the metrics log has each step once after a resume, --resume-if-exists
# starts fresh without a checkpoint, and train.keep_checkpoints keeps the newest numbered checkpoints.
#   resume_safety_test.sh SPVIT WORKDIR MPIRUN...   (MPIRUN without -np: the test chooses the rank counts)
set -euo pipefail
SPVIT=$1 WORK=$2
shift 2
MPIRUN=("$@")
[ ${#MPIRUN[@]} -gt 0 ] || MPIRUN=(mpirun --oversubscribe --bind-to none)
OUT=$WORK/run
rm -rf "$WORK" && mkdir -p "$WORK"
TRAIN=("$SPVIT" train -c "$(dirname "$0")/../../configs/tiny-cpu.yaml" --set train.out_dir="$OUT"
       --set model.depth=2 --set model.dim=32 --set data.size=64 --set model.max_tokens=64
       --set train.eval_every=0 --set train.checkpoint_every=0 --set train.progress=off --set data.workers=1)
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect RC LOG REGEX -- command...: runs the command, checks its exit code and that its output matches REGEX.
expect() {
  local want=$1 log=$WORK/$2 regex=$3
  shift 4
  set +e
  "$@" > "$log" 2>&1
  local rc=$?
  set -e
  cat "$log"
  [ "$rc" -eq "$want" ] || fail "$2: exit code $rc, expected $want"
  grep -qE -- "$regex" "$log" || fail "$2: output does not match: $regex"
}

expect 0 first.log "trained 5 steps" -- "${MPIRUN[@]}" -np 2 "${TRAIN[@]}" --set train.steps=5 --set grid.seq=2
expect 2 other-grid.log "grid\\.seq: 2 -> 1.*|--allow-changes grid\\.seq" -- \
    "${MPIRUN[@]}" -np 1 "${TRAIN[@]}" --resume --set train.steps=7 --set grid.seq=1
grep -q "grid.seq: 2 -> 1" "$WORK/other-grid.log" && grep -q -- "--allow-changes grid.seq" "$WORK/other-grid.log" ||
    fail "the refusal must name grid.seq and the way out"
expect 2 other-model.log "model\\.dim: 32 -> 48" -- \
    "${MPIRUN[@]}" -np 2 "${TRAIN[@]}" --resume --set train.steps=7 --set grid.seq=2 --set model.dim=48
# A different node count, allowed: a warning, then training continues from step 5.
expect 0 allowed.log "resuming with a changed setting \\(--allow-changes\\): grid\\.seq: 2 -> 1" -- \
    "${MPIRUN[@]}" -np 1 "${TRAIN[@]}" --resume --set train.steps=7 --set grid.seq=1 --allow-changes grid
grep -q "resumed from .* at step 5 " "$WORK/allowed.log" || fail "did not resume at step 5"
# The log of the first run had steps 1-5; the resumed run added 6-7: each step once.
steps=$(sed -E 's/.*"step":([0-9]+).*/\1/' "$OUT/metrics.jsonl" | tr '\n' ' ')
[ "$steps" = "1 2 3 4 5 6 7 " ] || fail "metrics log steps after resume: '$steps', expected 1..7 once each"
# Resuming again from step 7 into a run of 9 steps after an interruption that had logged steps beyond the checkpoint:
# the lines after the checkpoint are dropped and written again.
echo '{"step":8,"loss":1}' >> "$OUT/metrics.jsonl"
expect 0 again.log "trained 9 steps" -- "${MPIRUN[@]}" -np 1 "${TRAIN[@]}" --resume --set train.steps=9 --set grid.seq=1
steps=$(sed -E 's/.*"step":([0-9]+).*/\1/' "$OUT/metrics.jsonl" | tr '\n' ' ')
[ "$steps" = "1 2 3 4 5 6 7 8 9 " ] || fail "metrics log steps: '$steps', expected 1..9 once each"

# --resume-if-exists: fresh without a checkpoint, then continues from it.
rm -rf "$OUT"
expect 0 fresh.log "no checkpoint at .*starting a fresh run" -- \
    "${MPIRUN[@]}" -np 2 "${TRAIN[@]}" --resume-if-exists --set train.steps=4 --set grid.seq=2
expect 0 continued.log "resumed from .* at step 4 " -- \
    "${MPIRUN[@]}" -np 2 "${TRAIN[@]}" --resume-if-exists --set train.steps=6 --set grid.seq=2

# train.keep_checkpoints = 3 with a checkpoint every 2 steps: steps 6, 8, 10 kept; checkpoint.pt is step 10's.
rm -rf "$OUT"
expect 0 keep.log "trained 10 steps" -- "${MPIRUN[@]}" -np 2 "${TRAIN[@]}" --set train.steps=10 --set grid.seq=2 \
    --set train.checkpoint_every=2 --set train.keep_checkpoints=3
kept=$(cd "$OUT" && ls checkpoint*.pt | tr '\n' ' ')
[ "$kept" = "checkpoint-00000006.pt checkpoint-00000008.pt checkpoint-00000010.pt checkpoint.pt " ] ||
    fail "checkpoints kept: '$kept'"
cmp "$OUT/checkpoint.pt" "$OUT/checkpoint-00000010.pt" || fail "checkpoint.pt is not the newest"
echo "PASSED: refusals name the keys, --allow-changes warns and continues, metrics steps unique, --resume-if-exists, keep_checkpoints"

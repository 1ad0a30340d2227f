#!/usr/bin/env bash
# Preemption: a run stopped by a signal mid-training writes a checkpoint, exits with 75, and `--resume` then ends
# bit for bit where an uninterrupted run ends (same checkpoint bytes: weights, optimiser, position, RNG; same metrics
# lines apart from timings; no step logged twice).
#   preemption_test.sh MODE SPVIT WORKDIR [mpirun args...]
#   MODE: usr1-mpirun (SIGUSR1 to mpirun, which forwards it), term-rank1 (SIGTERM to rank 1 only),
#         term-all (SIGTERM to every rank at once)
set -euo pipefail
MODE=$1 SPVIT=$2 WORK=$3
shift 3
MPIRUN=("$@")
[ ${#MPIRUN[@]} -gt 0 ] || MPIRUN=(mpirun -np 2 --oversubscribe --bind-to none)
OUT=$WORK/run  # the same out_dir for every run: it is part of the configuration stored in the checkpoint
rm -rf "$WORK" && mkdir -p "$WORK"
STEPS=150
TRAIN=("$SPVIT" train -c "$(dirname "$0")/../../configs/tiny-cpu.yaml" --set train.out_dir="$OUT"
       --set train.steps=$STEPS --set model.depth=2 --set model.dim=32 --set data.size=64 --set model.max_tokens=64
       --set train.eval_every=0 --set train.checkpoint_every=0 --set train.progress=off --set data.workers=1)

timings() { sed -E 's/"(peak_mem_mib|step_s|tokens_per_s)":[^,}]*,?//g' "$1"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== uninterrupted reference run ($STEPS steps)"
"${MPIRUN[@]}" "${TRAIN[@]}" > "$WORK/reference.log" 2>&1 || { cat "$WORK/reference.log"; fail "reference run failed"; }
mv "$OUT" "$WORK/reference"

echo "== interrupted run ($MODE)"
"${MPIRUN[@]}" "${TRAIN[@]}" > "$WORK/interrupted.log" 2>&1 &
LAUNCHER=$!
# Wait for a few steps, so the signal lands mid-run.
for _ in $(seq 1 600); do
  [ -f "$OUT/metrics.jsonl" ] && [ "$(wc -l < "$OUT/metrics.jsonl")" -ge 5 ] && break
  kill -0 "$LAUNCHER" 2>/dev/null || break
  sleep 0.1
done
rank_pid() {  # the pid of world rank $1 among mpirun's children
  for pid in $(pgrep -P "$LAUNCHER"); do
    if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then echo "$pid"; return; fi
  done
}
case $MODE in
  usr1-mpirun) kill -USR1 "$LAUNCHER" ;;
  term-rank1) pid=$(rank_pid 1); [ -n "$pid" ] || fail "rank 1 not found"; kill -TERM "$pid" ;;
  term-all) pids=$(pgrep -P "$LAUNCHER"); [ -n "$pids" ] || fail "no ranks found"; kill -TERM $pids ;;
  *) fail "unknown mode $MODE" ;;
esac
set +e
wait "$LAUNCHER"
rc=$?
set -e
cat "$WORK/interrupted.log"
[ "$rc" -eq 75 ] || fail "interrupted run exited with $rc, expected 75 (stopped with a checkpoint)"
grep -q "received: stopped after step" "$WORK/interrupted.log" || fail "no stop message"
! grep -qiE "terminate called|MPI_ABORT|stack trace" "$WORK/interrupted.log" || fail "unclean stop"
[ -f "$OUT/checkpoint.pt" ] || fail "no checkpoint after the stop"
! ls "$OUT"/*.tmp.* >/dev/null 2>&1 || fail "temporary files left behind"
stopped_at=$(wc -l < "$OUT/metrics.jsonl")
(( stopped_at > 0 && stopped_at < STEPS )) || fail "stopped after $stopped_at steps: not mid-run"
echo "stopped after step $stopped_at of $STEPS"

echo "== resumed run"
"${MPIRUN[@]}" "${TRAIN[@]}" --resume > "$WORK/resumed.log" 2>&1 || { cat "$WORK/resumed.log"; fail "resume failed"; }
cmp "$OUT/checkpoint.pt" "$WORK/reference/checkpoint.pt" || fail "the resumed run's checkpoint differs from the uninterrupted run's"
diff <(timings "$OUT/metrics.jsonl") <(timings "$WORK/reference/metrics.jsonl") || fail "metrics lines differ"
echo "PASSED: stopped at step $stopped_at by $MODE, exit 75; resumed run equals the uninterrupted one (checkpoint bytes, $STEPS metrics lines)"

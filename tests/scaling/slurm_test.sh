#!/usr/bin/env bash
# spvit under a real Slurm (tests/scaling/slurm_cluster.sh: a one-node cluster from Debian's packages, stopped on
# exit). Fails, never skips, when the daemons cannot start.
#   slurm_test.sh sweep   SPVIT WORKDIR  a 2-rank sweep point submitted with sbatch and started by srun reports world
#                                        size 2 and grid 1x2; with the MPI wire-up turned off (srun --mpi=none) the
#                                        point fails and no row is written
#   slurm_test.sh preempt SPVIT WORKDIR  the Slurm template in CPU mode: `scancel --signal=USR1 --batch` mid-run ->
#                                        checkpoint, exit 75, `scontrol requeue` -> the requeued run resumes and ends
#                                        bit for bit where an uninterrupted job ends
set -euo pipefail
MODE=$1 SPVIT=$(realpath "$2") WORK=$(realpath -m "$3")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/tests/scaling/slurm_cluster.sh"
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$WORK" && mkdir -p "$WORK"
trap 'slurm_stop "$WORK/slurm"' EXIT
slurm_start "$WORK/slurm" || fail "the test Slurm did not start"

# Waits until job $1 has finished (its record stays MinJobAge = 600 s); prints its final state line.
wait_job() {
  local state=""
  for _ in $(seq 1 "${2:-600}"); do
    state=$(scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' || true)
    case $state in JobState=COMPLETED|JobState=FAILED|JobState=CANCELLED|JobState=TIMEOUT|JobState=NODE_FAIL) break ;; esac
    sleep 1
  done
  scontrol show job -o "$1"
}

case $MODE in
sweep)
  sweep_cmd() {  # the sweep as one shell line for sbatch --wrap, rows to $1
    local cmd=(/usr/bin/python3 "$ROOT/scripts/scaling/sweep.py" --kind strong --tokens 256 --ranks 2
               --strategies lss-kv --launcher srun --out "$1" --spvit "$SPVIT" --
               --dim 32 --depth 1 --heads 2 --patch 8 --decoder-width 4 --steps 1 --warmup 1)
    printf '%q ' "${cmd[@]}"
  }
  echo "== sweep under sbatch -n 2, ranks started by srun (PMIx)"
  sbatch --wait --gpus-per-node=0 -n 2 -o "$WORK/sweep.out" --wrap "$(sweep_cmd "$WORK/sweep.jsonl")" \
    || { cat "$WORK/sweep.out"; fail "the sweep job failed"; }
  cat "$WORK/sweep.out"
  /usr/bin/python3 - "$WORK/sweep.jsonl" <<'PY' || fail "the sweep's row does not show one 2-rank job"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 1, rows
r = rows[0]
assert r["ranks"] == 2 and r["grid"] == "1x2" and r["launcher"] == "srun", r
assert r["comm_per_step"]["all_gather"]["received_bytes"] > 0, r["comm_per_step"]
print("row OK: world size", r["ranks"], "grid", r["grid"], "launcher", r["launcher"])
PY
  # Without the PMIx wire-up Open MPI's ranks cannot find each other: here they refuse to start (MPI_Init); where a
  # stack instead runs N singletons, spvit refuses grid 1x2 on one rank and the sweep's row check refuses the rest.
  echo "== the same with srun --mpi=none: the point must fail and leave no row"
  if sbatch --wait --gpus-per-node=0 -n 2 -o "$WORK/broken.out" --export=ALL,SLURM_MPI_TYPE=none \
       --wrap "$(sweep_cmd "$WORK/broken.jsonl")"; then
    cat "$WORK/broken.out"; fail "a sweep without the MPI wire-up was accepted"
  fi
  grep -qE "check the launcher's MPI/PMI setup|needs 2 ranks but this run has 1|failed with exit code" \
    "$WORK/broken.out" || { cat "$WORK/broken.out"; fail "the sweep did not name the failed point"; }
  [ ! -s "$WORK/broken.jsonl" ] || fail "the failed point was written to the sweep file"
  echo "PASSED: one 2-rank job under Slurm (world size 2, grid 1x2); a broken wire-up is refused" ;;
preempt)
  OUT=$WORK/run STEPS=150
  ARGS=(--set train.out_dir="$OUT" --set train.steps=$STEPS --set model.depth=2 --set model.dim=32 --set data.size=64
        --set model.max_tokens=64 --set train.eval_every=0 --set train.checkpoint_every=0 --set train.progress=off
        --set data.workers=1)
  submit() {  # the template in CPU mode on 2 ranks, job log $1 (appended across the requeue); prints the job id
    CPU_MODE=1 SPVIT=$SPVIT sbatch --parsable --gpus-per-node=0 -n 2 --open-mode=append --chdir "$ROOT" -o "$1" \
      scripts/cluster/slurm-frontier.sbatch configs/tiny-cpu.yaml 1x2 "${ARGS[@]}"
  }
  timings() { sed -E 's/"(peak_mem_mib|step_s|tokens_per_s)":[^,}]*,?//g' "$1"; }

  echo "== uninterrupted job ($STEPS steps)"
  job=$(submit "$WORK/reference.out")
  wait_job "$job" | grep -q "JobState=COMPLETED.*ExitCode=0:0" || { cat "$WORK/reference.out"; fail "reference job"; }
  mv "$OUT" "$WORK/reference"

  echo "== interrupted job: scancel --signal=USR1 --batch after a few steps"
  job=$(submit "$WORK/interrupted.out")
  for _ in $(seq 1 1200); do
    [ -f "$OUT/metrics.jsonl" ] && [ "$(wc -l < "$OUT/metrics.jsonl")" -ge 5 ] && break
    sleep 0.1
  done
  [ -f "$OUT/metrics.jsonl" ] || { cat "$WORK/interrupted.out"; fail "the job did not start training"; }
  scancel --signal=USR1 --batch "$job"
  final=$(wait_job "$job")
  cat "$WORK/interrupted.out"
  echo "$final"
  grep -q "received: stopped after step" "$WORK/interrupted.out" || fail "no stop message from spvit"
  grep -q "checkpoint written; requeueing job $job" "$WORK/interrupted.out" || fail "the template did not requeue"
  echo "$final" | grep -q "Restarts=1" || fail "the job was not requeued exactly once"
  echo "$final" | grep -q "JobState=COMPLETED.*ExitCode=0:0" || fail "the requeued job did not complete"
  ! grep -qiE "terminate called|MPI_ABORT|stack trace" "$WORK/interrupted.out" || fail "unclean stop"
  cmp "$OUT/checkpoint.pt" "$WORK/reference/checkpoint.pt" || fail "the requeued job's checkpoint differs"
  diff <(timings "$OUT/metrics.jsonl") <(timings "$WORK/reference/metrics.jsonl") || fail "metrics lines differ"
  echo "PASSED: USR1 -> checkpoint -> requeue -> resumed job equals the uninterrupted one (checkpoint bytes, $STEPS metrics lines)" ;;
*) fail "unknown mode $MODE" ;;
esac

#!/usr/bin/env bash
# The performance model's validation on this machine (docs/scaling.md, "Validation"), in three steps that never mix:
#   1. calibrate: `spvit plan --calibrate` measures microbenchmarks only (matmul, attention, the decoder alone,
#      element-wise ops, all_gather) at the validation model's shapes — it never sees a training step — once per
#      round; machines/dev-2core.yaml is the rounds' median (median_machine.py);
#   2. measure: full `spvit bench step` runs (scripts/scaling/sweep.py) over 4 strategies, np 1-4 and three token
#      counts, ROUNDS (default 3) times -> docs/scaling/validation-2core-raw.jsonl, the median round of each
#      -> docs/scaling/validation-2core.jsonl (committed: CI recomputes the predictions from it, no timing);
#   3. compare: `spvit plan --validate` -> the per-row errors, the median, and docs/images/scaling/model_vs_measured.png.
# About 10 minutes per round on 2 cores; run it on an idle machine. Not part of CI.
#   scripts/scaling/measure-validation.sh [build/bin/spvit]
set -euo pipefail
cd "$(dirname "$0")/../.."
SPVIT=${1:-build/bin/spvit}
OUT=docs/scaling/validation-2core.jsonl
MACHINE=machines/dev-2core.yaml
export OMP_NUM_THREADS=1  # one thread per rank, as the sweeps run
# The validation model: a small ViT + UNETR (E=64, 2 blocks, 4 heads, patch 8), as docs/scaling.md's sweeps.
SHAPE=(--set model.dim=64 --set model.depth=2 --set model.heads=4 --set model.patch=8 --set model.decoder_width=8
       --set data.size=256)
MODEL=(--dim 64 --depth 2 --heads 4 --patch 8 --decoder-width 8 --steps 5 --warmup 1)
# ROUNDS rounds of the whole sweep, interleaved in time; each configuration keeps its median round (median_rows.py).
RAW=docs/scaling/validation-2core-raw.jsonl
rm -f "$RAW"
CALIBRATED=()
for round in $(seq "${ROUNDS:-3}"); do
  # Calibration in every round, before its measurements; the machine file is the median of the rounds'.
  mpirun -np 2 --bind-to none --allow-run-as-root -x OMP_NUM_THREADS "$SPVIT" plan --calibrate --name dev-2core \
    "${SHAPE[@]}" --out "$RAW.machine-$round.yaml"
  CALIBRATED+=("$RAW.machine-$round.yaml")
  for L in 256 1024 2304; do  # one rank runs the same local attention whatever the strategy: measured once
    scripts/scaling/sweep.py --kind strong --tokens "$L" --ranks 1 --strategies lss-kv --out "$RAW" --spvit "$SPVIT" \
      -- "${MODEL[@]}"
    scripts/scaling/sweep.py --kind strong --tokens "$L" --ranks 2,3,4 --strategies lss-kv,lss-x,ulysses,ring \
      --out "$RAW" --spvit "$SPVIT" -- "${MODEL[@]}"
  done
done
scripts/scaling/median_rows.py "$RAW" "$OUT"
scripts/scaling/median_machine.py "$MACHINE" "${CALIBRATED[@]}"
rm -f "${CALIBRATED[@]}"
"$SPVIT" plan --validate "$OUT" --machine "$MACHINE" --out docs/scaling/validation-2core-predicted.jsonl || true
scripts/scaling/plot.py docs/scaling/validation-2core-predicted.jsonl --out-dir docs/images/scaling/validation

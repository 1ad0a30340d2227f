#!/usr/bin/env bash
# The sweeps and figures of docs/scaling.md, measured on this project's 2-core machine (np 1-4; 3 and 4 ranks are
# oversubscribed and labelled so). About 10 minutes. Not part of CI (timings); CI re-plots the committed rows.
#   scripts/scaling/measure-2core.sh [build/bin/spvit]
set -euo pipefail
cd "$(dirname "$0")/../.."
SPVIT=${1:-build/bin/spvit}
OUT=docs/scaling/sweeps-2core.jsonl
mkdir -p docs/scaling docs/images/scaling
rm -f "$OUT"
# A small ViT + UNETR so that one rank's step fits the cores' time: E=64, 2 blocks, 4 heads, patch 8.
MODEL=(--dim 64 --depth 2 --heads 4 --patch 8 --decoder-width 8 --steps 3 --warmup 1)
STRATEGIES=lss-kv,lss-x,ulysses,ring
scripts/scaling/sweep.py --kind strong --tokens 1024 --ranks 1,2,3,4 --strategies $STRATEGIES --out "$OUT" \
  --spvit "$SPVIT" -- "${MODEL[@]}"
scripts/scaling/sweep.py --kind weak --tokens-per-rank 256 --ranks 1,2,4 --strategies $STRATEGIES --out "$OUT" \
  --spvit "$SPVIT" -- "${MODEL[@]}"
scripts/scaling/sweep.py --kind data --tokens 256 --ranks 1,2,4 --strategies lss-kv --out "$OUT" \
  --spvit "$SPVIT" -- "${MODEL[@]}"
scripts/scaling/plot.py "$OUT" --out-dir docs/images/scaling

#!/usr/bin/env bash
# One call on a GPU machine: build against its CUDA LibTorch (scripts/build-cuda.sh), run every GPU test and the
# training-step benchmark against the PyTorch baseline in the same invocation, and keep every log in ${OUT}.
# Device time is scarce, so each stage has its own time limit and a failed stage does not stop the next.
#   OUT=results scripts/gpu-check.sh            # STAGES="build tests bench" by default; "longest" searches the
#                                               # longest sequence that trains (checkpointed blocks and decoder chunks)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
BUILD_DIR=${BUILD_DIR:-build-cuda}
STAGES=${STAGES:-build tests bench}
TOKENS=${TOKENS:-4096,16384,65536}
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
stage() {  # stage NAME SECONDS COMMAND...: runs COMMAND with a time limit, log in $OUT/NAME.log, status in summary
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc seconds=$((SECONDS - start))" | tee -a "$OUT/summary.txt"
  return $rc
}
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
case " $STAGES " in *" build "*)
  KEEP_GOING=1 BUILD_DIR=$BUILD_DIR stage build 1500 scripts/build-cuda.sh ;;
esac
case " $STAGES " in *" tests "*)
  # The GPU-labelled tests, the GPU gtest binary (NCCL, attention backends, fused AdamW, trainer precision) and the
  # kernels, then the CPU suite's exactness core on this machine's LibTorch (catches version-dependent behaviour).
  stage tests_gpu 900 ctest --test-dir "$BUILD_DIR" --output-on-failure -R "gpu_|kernels"
  stage tests_core 900 ctest --test-dir "$BUILD_DIR" --output-on-failure -R "^unit$|mpi_grid_|cli_selftest|trainer_np2|adaptive_trainer_np2" ;;
esac
case " $STAGES " in *" bench "*)
  stage bench_spvit 600 "$BUILD_DIR/bin/spvit" bench step --device cuda --tokens "$TOKENS" --out "$OUT/spvit.jsonl"
  stage bench_pytorch 600 python3 benchmarks/pytorch_baseline.py --tokens "$TOKENS" --out "$OUT/pytorch.jsonl"
  # NCCL at world size 1 (one GPU): the code path and the device copies; multi-rank busbw comes from clusters.
  stage bench_collectives 120 mpirun -np 1 "$BUILD_DIR/bin/spvit" bench collectives --device cuda --backend nccl \
        -e 268435456 --out "$OUT/collectives.jsonl" ;;
esac
case " $STAGES " in *" longest "*)
  # Side x2 per size from 262,144 tokens (8192² pixels) until a step no longer fits: 1,048,576 tokens is the target
  # (one cold step each: at 1M tokens attention alone is ~1e17 FLOP, minutes per step).
  stage longest_spvit 600 "$BUILD_DIR/bin/spvit" bench step --device cuda --tokens 262144 --find-max --steps 1 \
        --warmup 0 --checkpointing --decoder-chunk-rows 16 --out "$OUT/longest.jsonl" ;;
esac
echo "logs in $OUT:"; cat "$OUT/summary.txt"

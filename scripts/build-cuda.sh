#!/usr/bin/env bash
# Builds spvit against the CUDA LibTorch of an installed PyTorch (and the NCCL wheel beside it) into
# ${BUILD_DIR:-build-cuda}: the recipe for GPU machines without a separate LibTorch download.
# Requires: a CUDA build of PyTorch (its LibTorch) and NCCL (SPVIT_WITH_NCCL=ON: configure fails without it).
# Optional: OpenCV, OpenSlide, libtiff (AUTO: the GPU machine has none of them; `spvit info` says what was built).
#   PYTHON=python3 BUILD_DIR=build-cuda scripts/build-cuda.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BUILD_DIR=${BUILD_DIR:-build-cuda}
SITE=$("$PYTHON" -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')
TORCH_CMAKE="$SITE/torch/share/cmake"
"$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.version.cuda else 1)' || {
  echo "error: the PyTorch of $PYTHON was built without CUDA; build-cuda.sh needs a CUDA LibTorch" >&2; exit 1; }
[ -d "$TORCH_CMAKE" ] || { echo "error: no LibTorch CMake files at $TORCH_CMAKE (is PyTorch installed for $PYTHON?)" >&2; exit 1; }
NCCL_ARGS=()
[ -d "$SITE/nvidia/nccl" ] && NCCL_ARGS=(-DNCCL_ROOT="$SITE/nvidia/nccl")
export CUDACXX=${CUDACXX:-/usr/local/cuda/bin/nvcc}
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH_CMAKE" \
      "${NCCL_ARGS[@]}" -DSPVIT_WITH_NCCL=ON "$@"
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" ${KEEP_GOING:+-- -k 0}  # KEEP_GOING=1: report every error

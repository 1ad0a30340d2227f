#!/usr/bin/env bash
# Configures and builds spvit into ${BUILD_DIR:-build}. Extra arguments go to cmake's configure step.
#   BUILD_DIR, BUILD_TYPE, JOBS override the defaults; TARGETS="spvit" builds only those targets (the demo does).
# Every CPU feature the README promises is required here (SPVIT_WITH_<X>=ON): on a machine that lacks a package,
# configure stops and names it, instead of building a smaller spvit. Opt out explicitly, e.g.
#   scripts/build.sh -DSPVIT_WITH_OPENSLIDE=AUTO
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}
JOBS=${JOBS:-$(nproc)}
REQUIRED_FEATURES=(-DSPVIT_WITH_OPENCV=ON -DSPVIT_WITH_OPENSLIDE=ON -DSPVIT_WITH_TIFF=ON)
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" "${REQUIRED_FEATURES[@]}" "$@"
else
  cmake -S . -B "$BUILD_DIR" "${REQUIRED_FEATURES[@]}" "$@" >/dev/null
fi
TARGET_ARGS=()
for t in ${TARGETS:-}; do TARGET_ARGS+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j "$JOBS" "${TARGET_ARGS[@]}"

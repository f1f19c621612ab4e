#!/usr/bin/env bash
# Configures and builds gridbench into build/ (or $GRIDBENCH_BUILD_DIR).
# Extra arguments are passed to cmake's configure step, e.g. -DGRIDBENCH_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${GRIDBENCH_BUILD_DIR:-build}"
JOBS="${GRIDBENCH_JOBS:-$(nproc)}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$BUILD_DIR" -j "$JOBS" ${GRIDBENCH_TARGETS:+--target $GRIDBENCH_TARGETS}

#!/usr/bin/env bash
# Installs what is missing (with the test tools: Slurm, munge, Prometheus, Chromium), builds
# everything, runs every test (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --test-tools
# Without a GPU the CUDA code is only compiled (its tests skip): for one architecture
# (sm_90), which checks the same code in less than half of the nvcc time of the
# default two (80 and 90). An explicit -DCMAKE_CUDA_ARCHITECTURES=... wins.
cuda_arch=()
if ! nvidia-smi -L >/dev/null 2>&1 && [[ " $* " != *CMAKE_CUDA_ARCHITECTURES* ]]; then
  cuda_arch=(-DCMAKE_CUDA_ARCHITECTURES=90)
fi
./scripts/build.sh "${cuda_arch[@]}" "$@"
BUILD_DIR="${GRIDBENCH_BUILD_DIR:-build}"
cd "$BUILD_DIR"
ctest --output-on-failure -j "${GRIDBENCH_JOBS:-$(nproc)}" --timeout 600

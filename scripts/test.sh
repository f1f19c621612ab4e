#!/usr/bin/env bash
# Installs what is missing (with the test tools: Slurm, munge, Prometheus, Chromium), builds
# everything, runs every test (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --test-tools
# Without a GPU the CUDA code is only compiled (its tests skip), for the default
# architectures, sm_80 and sm_90 (both: 46 s of wall time at -j2 on the 2-core
# development machine against 32 s for sm_90 alone). -DCMAKE_CUDA_ARCHITECTURES=... as
# an argument overrides them.
./scripts/build.sh "$@"
BUILD_DIR="${GRIDBENCH_BUILD_DIR:-build}"
cd "$BUILD_DIR"
ctest --output-on-failure -j "${GRIDBENCH_JOBS:-$(nproc)}" --timeout 600

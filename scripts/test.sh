#!/usr/bin/env bash
# Installs what is missing (with the test tools: Slurm, munge, Prometheus, Chromium), builds
# everything, runs every test (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --test-tools
./scripts/build.sh "$@"
BUILD_DIR="${GRIDBENCH_BUILD_DIR:-build}"
cd "$BUILD_DIR"
ctest --output-on-failure -j "${GRIDBENCH_JOBS:-$(nproc)}" --timeout 600

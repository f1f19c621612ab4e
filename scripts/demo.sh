#!/usr/bin/env bash
# Installs what is missing, builds gridbench, runs experiments/demo.json on the
# embedded default (this machine, local job slots) and says where the report is.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
GRIDBENCH_TARGETS="gridbench gridbench-job" ./scripts/build.sh
BUILD_DIR="${GRIDBENCH_BUILD_DIR:-build}"
mkdir -p out
"$BUILD_DIR/bin/gridbench" run experiments/demo.json --db out/gridbench.db --out out/demo -j "$(nproc)"
# The index of every grid in the database (out/index.html), each grid's page beside it.
"$BUILD_DIR/bin/gridbench" dashboard --db out/gridbench.db --out out
echo
cat out/demo/report.md
echo
echo "report: $(pwd)/out/demo/report.md (csv, json beside it; dashboard: $(pwd)/out/demo/index.html, all grids: $(pwd)/out/index.html)"
echo "again:  $BUILD_DIR/bin/gridbench results demo --db out/gridbench.db"

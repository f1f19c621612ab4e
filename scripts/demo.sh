#!/usr/bin/env bash
# Installs what is missing, builds gridbench, runs experiments/demo.json (reference
# 003's roofline theory, instant) and experiments/demo-reference-model.json (the
# reference model in weight and KV formats: perplexity, speed, memory; about half a
# minute on 2 cores) on the embedded default (this machine, local job slots), writes
# the dashboard beside them and says where the reports are.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
GRIDBENCH_TARGETS="gridbench gridbench-job" ./scripts/build.sh
BUILD_DIR="${GRIDBENCH_BUILD_DIR:-build}"
mkdir -p out
"$BUILD_DIR/bin/gridbench" run experiments/demo.json --db out/gridbench.db --out out/demo -j "$(nproc)"
"$BUILD_DIR/bin/gridbench" run experiments/demo-reference-model.json --db out/gridbench.db \
    --out out/demo-reference-model -j "$(nproc)"
# The index of every grid in the database (out/index.html), each grid's page beside it.
"$BUILD_DIR/bin/gridbench" dashboard --db out/gridbench.db --out out
echo
cat out/demo/report.md
echo
cat out/demo-reference-model/report.md
echo
echo "reports: $(pwd)/out/demo/report.md and $(pwd)/out/demo-reference-model/report.md (csv, json beside them;"
echo "         dashboards: index.html beside each, all grids: $(pwd)/out/index.html)"
echo "again:   $BUILD_DIR/bin/gridbench results demo-reference-model --db out/gridbench.db"

#!/usr/bin/env bash
# scripts/gpu-check.sh on a machine without an NVIDIA GPU: it builds nothing, still
# writes report.md and report.json saying so (the JSON well-formed enough for a
# reader: one object, its stage named), and exits 1. Skipped (77) where a GPU is.
set -u
src="$1"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "a GPU is present: this test is for machines without one"
  exit 77
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
GB_GPU_CHECK_BUILD_DIR="$out/build" bash "$src/scripts/gpu-check.sh" "$out/report"
rc=$?
fail() { echo "FAIL: $*"; exit 1; }
[[ $rc -eq 1 ]] || fail "exit status $rc, expected 1"
[[ -f "$out/report/report.md" ]] || fail "no report.md"
[[ -f "$out/report/report.json" ]] || fail "no report.json"
grep -q "no NVIDIA GPU found" "$out/report/report.md" || fail "report.md does not say there is no GPU"
grep -q '"stages": \[{"name": "gpu", "status": "failed"' "$out/report/report.json" || fail "report.json: $(cat "$out/report/report.json")"
[[ ! -d "$out/build" ]] || fail "it built something"
# Bad usage is exit 2.
bash "$src/scripts/gpu-check.sh" >/dev/null 2>&1; [[ $? -eq 2 ]] || fail "no OUT_DIR: expected exit 2"
echo "ok"

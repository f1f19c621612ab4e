#!/usr/bin/env bash
# The layout's promise, checked on the linked programs: the coordinator and the
# worker daemon carry none of the engine's heavy parts (tokenizer, PCRE2, ICU, model,
# backends, kernels' CPU ops). They validate, place and pass jobs on; only
# gridbench-job runs them, but for the theory-only kinds' pure arithmetic, which the
# coordinator computes. Usage: link_check.sh BIN_DIR
set -euo pipefail
bin="$1"
status=0
check() {  # program, what, pattern (grep -E over demangled symbol names)
  local n
  n=$(nm -C "$bin/$1" | grep -cE "$3" || true)
  if [ "$n" -ne 0 ]; then
    echo "FAIL: $1 links $n symbols of $2 ($3):"
    nm -C "$bin/$1" | grep -E "$3" | head -5 || true
    status=1
  else
    echo "ok: $1 links no $2"
  fi
}
for prog in gridbench-coordinator gridbench-worker; do
  [ -x "$bin/$prog" ] || { echo "FAIL: $bin/$prog is missing"; exit 1; }
  check "$prog" "tokenizer" 'gb::engine::Tokenizer'
  check "$prog" "PCRE2" 'pcre2_'
  check "$prog" "ICU" 'unorm2_|icu_[0-9]+::'
  check "$prog" "model" 'gb::engine::(Model|KvCache)::'
  check "$prog" "backend" 'gb::engine::make_cpu_backend'
  check "$prog" "CPU ops" 'gb::kernels::cpu::'
  check "$prog" "weight loaders" 'gb::engine::(open_weights|HfCheckpoint::|SafetensorsFile::)'
  check "$prog" "measurements" 'gb::engine::run_[a-z]+_job'
done
# The coordinator computes the theory-only kinds itself: it links their arithmetic
# (engine/theory/theory_output.h) and nothing above it.
n=$(nm -C "$bin/gridbench-coordinator" | grep -cE 'gb::engine::theory_output' || true)
if [ "$n" -eq 0 ]; then
  echo "FAIL: gridbench-coordinator does not link engine/theory/theory_output (the theory-only kinds)"
  status=1
else
  echo "ok: gridbench-coordinator links the theory-only kinds' arithmetic"
fi
# The positive control: gridbench-job does link them, so the patterns can match.
n=$(nm -C "$bin/gridbench-job" | grep -cE 'gb::engine::Tokenizer|gb::kernels::cpu::|gb::engine::run_[a-z]+_job' || true)
if [ "$n" -eq 0 ]; then
  echo "FAIL: gridbench-job shows none of the patterns: the check cannot see what it looks for"
  status=1
else
  echo "ok: gridbench-job links the engine ($n matching symbols)"
fi
exit $status

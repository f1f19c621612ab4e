#!/usr/bin/env bash
# scripts/gpu-check.sh OUT_DIR: the checks a GPU machine's few minutes are spent on.
#
# On a machine with an NVIDIA GPU, nvcc, cmake, ninja and Python with torch and
# transformers (no network, perhaps no -dev packages), it builds the engine-only
# configuration with CUDA for the present GPU's architecture only, then runs stages
# in priority order, each under its own time cap and all within one budget
# (GB_GPU_CHECK_BUDGET_S, default 240 s after the build; the build has its own cap,
# GB_GPU_CHECK_BUILD_CAP_S, default 240 s, and a rerun reuses the build folder), rewriting OUT_DIR/report.md
# and OUT_DIR/report.json after every stage (a run cut short still leaves a report):
#   1. gpu_tests       gb_cuda_tests (every CUDA op against the CPU backend, memory, errors)
#   2. model_logits    whole-model logits of every family and format against the CPU backend
#   3. decode_8b_b1    batch-1 decode of synthetic llama-3-8b per weight format
#   4. kernel_benches  cuda_matmul_bench and cuda_attention_bench (bytes/s over copy bandwidth)
#   5. transformers    tools/hf_decode_bench.py: eager bf16 HF llama-3-8b, random weights, decode tokens/s
#   6. sanitizer       compute-sanitizer memcheck and racecheck on one case per op and format
#   7. decode_all      cuda_decode_bench: llama-3-8b, qwen2.5-1.5b, qwen3-1.7b, pythia-2.8b x batch 1, 8, 32
# Headers the machine lacks come from third_party/debs/*.deb when the tree carries
# them (tools/fetch_gpu_debs.sh fetches them on a Debian 12 machine): unpacked into
# the build folder, found through CMAKE_PREFIX_PATH and PKG_CONFIG_PATH, their
# libraries on LD_LIBRARY_PATH of the programs built here only.
#
# Exit status: 0 when every stage passed, 1 when one failed or timed out, or when
# there is no GPU (the report then says so and nothing is built), 2 on bad usage.
# Environment: GB_GPU_CHECK_BUDGET_S (seconds for the stages), GB_GPU_CHECK_BUILD_DIR
# (default build-gpu), GB_GPU_CHECK_JOBS (build parallelism, default nproc).
set -uo pipefail

if [[ $# -ne 1 || "$1" == -* ]]; then
  echo "usage: scripts/gpu-check.sh OUT_DIR" >&2
  exit 2
fi
out="$1"
mkdir -p "$out" || exit 2
out="$(cd "$out" && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${GB_GPU_CHECK_BUILD_DIR:-$root/build-gpu}"
budget="${GB_GPU_CHECK_BUDGET_S:-240}"
jobs="${GB_GPU_CHECK_JOBS:-$(nproc 2>/dev/null || echo 4)}"
started=$(date +%s)

# ---- the report ----
names=() statuses=() secs=() caps=() summaries=()
machine="unknown"
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty="$(git -C "$root" status --porcelain 2>/dev/null | head -1)"
[[ -n "$dirty" ]] && commit="$commit (with uncommitted changes)"
note=""

json_str() {  # a JSON string literal of $1
  local s="$1"
  s="${s//\\/\\\\}"; s="${s//\"/\\\"}"; s="${s//$'\t'/\\t}"; s="${s//$'\r'/}"; s="${s//$'\n'/\\n}"
  printf '"%s"' "$s"
}

write_report() {
  local md="$out/report.md" js="$out/report.json" i
  {
    echo "# gpu-check report"
    echo
    echo "- machine: $machine"
    echo "- commit: $commit"
    echo "- written: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(( $(date +%s) - started )) s after the start"
    [[ -n "$note" ]] && echo "- note: $note"
    echo
    echo "| stage | status | seconds | cap | summary |"
    echo "| --- | --- | --- | --- | --- |"
    for i in "${!names[@]}"; do
      echo "| ${names[$i]} | ${statuses[$i]} | ${secs[$i]} | ${caps[$i]} | ${summaries[$i]//|/\\|} |"
    done
    for i in "${!names[@]}"; do
      local log="$out/${names[$i]}.log"
      [[ -f "$log" ]] || continue
      echo
      echo "## ${names[$i]} (last 60 lines of ${names[$i]}.log)"
      echo
      echo '```'
      tail -n 60 "$log"
      echo '```'
    done
  } >"$md.tmp" && mv "$md.tmp" "$md"
  {
    printf '{"machine": %s, "commit": %s, "note": %s, "stages": [' "$(json_str "$machine")" "$(json_str "$commit")" \
      "$(json_str "$note")"
    for i in "${!names[@]}"; do
      [[ $i -gt 0 ]] && printf ', '
      printf '{"name": %s, "status": %s, "seconds": %s, "cap_s": %s, "summary": %s, "log": %s}' \
        "$(json_str "${names[$i]}")" "$(json_str "${statuses[$i]}")" "${secs[$i]}" "${caps[$i]}" \
        "$(json_str "${summaries[$i]}")" "$(json_str "${names[$i]}.log")"
    done
    printf ']}\n'
  } >"$js.tmp" && mv "$js.tmp" "$js"
}

record() {  # name status seconds cap summary
  names+=("$1"); statuses+=("$2"); secs+=("$3"); caps+=("$4"); summaries+=("$5")
  write_report
}

failed=0
# run_stage NAME CAP_S SUMMARY_FN COMMAND...: runs COMMAND under timeout (the smaller
# of CAP_S and what is left of the budget), its output in OUT_DIR/NAME.log.
run_stage() {
  local name="$1" cap="$2" summarize="$3"
  shift 3
  local left=$(( budget - ($(date +%s) - stages_started) ))
  if (( left < 15 )); then
    record "$name" "not run" 0 "$cap" "out of time: the budget of ${budget} s was spent"
    failed=1
    return
  fi
  (( cap > left )) && cap=$left
  local t0=$(date +%s) rc
  # A fresh bash runs the command, so that a stage may be one of the functions below;
  # they and the variables they read are handed over by declare.
  timeout --kill-after=10 "$cap" bash -c "$(declare -f gbrun build_all kernel_benches sanitize 2>/dev/null)
$(declare -p root build arch jobs cmake_extra bin vendor_lib out 2>/dev/null)
\"\$@\"" "$name" "$@" >"$out/$name.log" 2>&1
  rc=$?
  local dt=$(( $(date +%s) - t0 )) status="passed"
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then status="timed out"; failed=1
  elif [[ $rc -ne 0 ]]; then status="failed (exit $rc)"; failed=1; fi
  record "$name" "$status" "$dt" "$cap" "$("$summarize" "$out/$name.log")"
}

gtest_summary() {  # the gtest totals of a log and the failed tests' names
  local f="$1" p k x names
  p="$(grep -oE '^\[  PASSED  \] [0-9]+' "$f" | grep -oE '[0-9]+$' | tail -1)"
  k="$(grep -oE '^\[  SKIPPED \] [0-9]+ tests?, listed below' "$f" | grep -oE '[0-9]+' | tail -1)"
  x="$(grep -oE '^\[  FAILED  \] [0-9]+ tests?, listed below' "$f" | grep -oE '[0-9]+' | tail -1)"
  names="$(grep -E '^\[  FAILED  \] [A-Za-z_]+\.' "$f" | sed -E 's/^\[  FAILED  \] //; s/ .*//' | sort -u | head -8 | tr '\n' ' ')"
  echo "passed ${p:-0}, failed ${x:-0}, skipped ${k:-0}${names:+; failed: $names}"
}
last_line() { tail -n 1 "$1" | cut -c1-200; }
table_summary() { grep -cE '^[a-z0-9.-]+ +[a-z0-9_:.-]+ +[0-9]+ ' "$1" | sed 's/$/ rows measured/'; }
sanitizer_summary() { grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$1" | tr '\n' ' ' | cut -c1-300; }

bin="$build/bin"
arch=""
cmake_extra=()
vendor_lib=""

# ---- the GPU ----
if ! command -v nvidia-smi >/dev/null 2>&1 || ! gpu_line="$(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)" || [[ -z "$gpu_line" ]]; then
  machine="no NVIDIA GPU found (nvidia-smi missing or it lists no device)"
  note="nothing was built or run: this script needs a machine with an NVIDIA GPU"
  stages_started=$(date +%s)
  record "gpu" "failed" 0 0 "no GPU on this machine"
  exit 1
fi
arch="$(echo "$gpu_line" | cut -d, -f2 | tr -d ' .')"
machine="$gpu_line; $(nproc) CPU cores; nvcc $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' | cut -d' ' -f2)"

# ---- the vendored headers ----
prefix="$build/vendor"
if compgen -G "$root/third_party/debs/*.deb" >/dev/null; then
  mkdir -p "$prefix"
  for deb in "$root"/third_party/debs/*.deb; do
    if command -v dpkg-deb >/dev/null 2>&1; then
      dpkg-deb -x "$deb" "$prefix"
    else
      (t="$(mktemp -d)" && cd "$t" && ar x "$deb" && tar -xf data.tar.* -C "$prefix" && rm -rf "$t")
    fi
  done
  # The .pc files name /usr: point them at the unpacked tree.
  find "$prefix" -name '*.pc' -exec sed -i "s|^prefix=/usr|prefix=$prefix/usr|" {} +
  vendor_lib="$prefix/usr/lib/x86_64-linux-gnu"
  export PKG_CONFIG_PATH="$vendor_lib/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  cmake_extra+=("-DCMAKE_PREFIX_PATH=$prefix/usr")
  # pkg-config: the machine's own (named, so that CMake does not pick the unpacked one,
  # which needs its library path), or the unpacked pkgconf through a wrapper that sets it.
  if command -v pkg-config >/dev/null 2>&1; then
    cmake_extra+=("-DPKG_CONFIG_EXECUTABLE=$(command -v pkg-config)")
  else
    cat >"$prefix/pkg-config" <<EOF
#!/bin/sh
LD_LIBRARY_PATH="$vendor_lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$prefix/usr/bin/pkgconf" "\$@"
EOF
    chmod +x "$prefix/pkg-config"
    cmake_extra+=("-DPKG_CONFIG_EXECUTABLE=$prefix/pkg-config")
  fi
  note="headers from third_party/debs ($(ls "$root"/third_party/debs/*.deb | wc -l) packages)"
fi
# Programs built here find the vendored libraries; python and the system tools do not see them.
gbrun() {
  if [[ -n "$vendor_lib" ]]; then LD_LIBRARY_PATH="$vendor_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; else "$@"; fi
}

# ---- the build ----
stages_started=$(date +%s)
budget_saved=$budget
budget=100000  # the build is capped by its own limit, not the stages' budget
build_all() {
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRIDBENCH_ENGINE_ONLY=ON -DGRIDBENCH_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$arch" "${cmake_extra[@]}" &&
    ninja -C "$build" -j "$jobs" gb_cuda_tests cuda_decode_bench cuda_matmul_bench $(
      grep -q cuda_attention_bench "$build/build.ninja" 2>/dev/null && echo cuda_attention_bench)
}
run_stage build "${GB_GPU_CHECK_BUILD_CAP_S:-240}" last_line build_all
budget=$budget_saved
if [[ "${statuses[-1]}" != "passed" ]]; then
  note="${note:+$note; }the build failed: no stage ran"
  write_report
  exit 1
fi
stages_started=$(date +%s)

# ---- the stages, in priority order ----
run_stage gpu_tests 100 gtest_summary gbrun "$bin/gb_cuda_tests" --gtest_filter='-CudaModelLogits.*' --gtest_color=no
run_stage model_logits 60 gtest_summary gbrun "$bin/gb_cuda_tests" --gtest_filter='CudaModelLogits.*' --gtest_color=no
run_stage decode_8b_b1 100 table_summary gbrun "$bin/cuda_decode_bench" --models llama-3-8b \
  --formats bf16,int8-channel,q4_0 --batches 1 --json "$out/decode_8b_b1.json"
kernel_benches() {
  gbrun "$bin/cuda_matmul_bench" || return $?
  [[ -x "$bin/cuda_attention_bench" ]] && gbrun "$bin/cuda_attention_bench"
}
run_stage kernel_benches 60 last_line kernel_benches
run_stage transformers 90 last_line python3 "$root/tools/hf_decode_bench.py" --model llama-3-8b --batch 1 \
  --json "$out/transformers.json"
sanitize() {
  command -v compute-sanitizer >/dev/null 2>&1 || { echo "compute-sanitizer is not on the PATH"; return 1; }
  local filter='CudaBackendOps.*:CudaBackendMemory.*:*OneShapePerElement*'
  GB_CUDA_OPS_ONE_PER_FORMAT=1 gbrun compute-sanitizer --tool memcheck --error-exitcode 3 \
    "$bin/gb_cuda_tests" --gtest_filter="$filter" --gtest_color=no || return $?
  GB_CUDA_OPS_ONE_PER_FORMAT=1 gbrun compute-sanitizer --tool racecheck --racecheck-report analysis --error-exitcode 3 \
    "$bin/gb_cuda_tests" --gtest_filter="$filter" --gtest_color=no
}
run_stage sanitizer 90 sanitizer_summary sanitize
run_stage decode_all 120 table_summary gbrun "$bin/cuda_decode_bench" --formats bf16 --batches 1,8,32 \
  --json "$out/decode_all.json"

exit "$failed"

#!/usr/bin/env bash
# gridbench's CPU engine against llama.cpp on the same GGUF files, in one run:
# batch-1 decode tokens/s and PROMPT-token prefill tokens/s of each, side by side
# with their ratios, on the f16 model that tools/make_bench_gguf.py writes (~195M
# parameters, llama architecture) and on llama.cpp's own q8_0, q4_0 and q4_K_M
# quantizations of it; then gridbench's own int8-channel, int4-g128 and nf4-b64
# (quantized by gridbench from the f16 file at load).
#
# gridbench runs the GGUF q-types with 8-bit activations (--activations q8), as
# llama.cpp does, and f32 activations for everything else; each row names the
# kernels its linear layers ran. llama.cpp runs through llama-cpp-python
# (bench/llamacpp_speed.py); where it is absent, its columns say so and the
# gridbench figures are still printed. Not a test: a benchmark to run by hand on a
# quiet machine (see `uptime`).
#
#   bench/engine_vs_llamacpp.sh [BUILD_DIR]
# Environment: PYTHON (default /work/venv-ref/bin/python, else python3), THREADS (2),
# MODELS (BUILD_DIR/bench-models), PROMPT (128), STEPS (64), REPEATS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
THREADS=${THREADS:-2}
MODELS=${MODELS:-$BUILD/bench-models}
PROMPT=${PROMPT:-128}
STEPS=${STEPS:-64}
REPEATS=${REPEATS:-3}
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x /work/venv-ref/bin/python ]]; then PYTHON=/work/venv-ref/bin/python; else PYTHON=python3; fi
fi
BENCH=$BUILD/bin/engine_bench
[[ -x $BENCH ]] || BENCH=$BUILD/bench/engine_bench
[[ -x $BENCH ]] || { echo "engine_bench not built: ninja -C $BUILD engine_bench" >&2; exit 2; }

have_llama=1
if ! "$PYTHON" -c 'import llama_cpp' 2>/dev/null; then
  have_llama=0
  echo "NOTE: llama-cpp-python is not installed for $PYTHON: llama.cpp's columns are empty," \
       "and the quantized files cannot be made (pip install llama-cpp-python)."
fi
if [[ ! -f $MODELS/bench-llama-f16.gguf || ( $have_llama == 1 && ! -f $MODELS/bench-llama-q4_k_m.gguf ) ]]; then
  "$PYTHON" tools/make_bench_gguf.py --out "$MODELS" >/dev/null || true
fi
[[ -f $MODELS/bench-llama-f16.gguf ]] || { echo "no $MODELS/bench-llama-f16.gguf (tools/make_bench_gguf.py)" >&2; exit 2; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); threads $THREADS;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "decode: batch 1, $STEPS steps after a $PROMPT-token prompt; prefill: $PROMPT tokens; best of $REPEATS runs"
printf '%-14s %10s %10s %6s   %10s %10s %6s   %s\n' format "gb dec/s" "llama dec/s" ratio "gb pre/s" "llama pre/s" ratio \
  "gridbench kernels"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

row() {  # NAME FILE WEIGHT_FORMAT ACTIVATIONS LLAMA(0/1)
  local name=$1 file=$2 wf=$3 act=$4 llama=$5 out gd gp kern ld="-" lp="-"
  out=$("$BENCH" --brief --model "gguf:$file" ${wf:+--weight-format "$wf"} --activations "$act" \
        --threads "$THREADS" --prompt-tokens "$PROMPT" --steps "$STEPS" --repeats "$REPEATS" 2>&1) \
    || { echo "$name: engine_bench failed: $out"; return; }
  read -r gd gp <<<"$(sed -n 1p <<<"$out")"
  kern=$(sed -n 2p <<<"$out")
  if [[ $llama == 1 && $have_llama == 1 ]]; then
    read -r ld lp <<<"$("$PYTHON" bench/llamacpp_speed.py "$file" --threads "$THREADS" --prompt-tokens "$PROMPT" \
                        --steps "$STEPS" --repeats "$REPEATS" 2>/dev/null || echo "- -")"
  elif [[ $llama == 1 ]]; then
    ld="absent" lp="absent"
  fi
  printf '%-14s %10s %10s %6s   %10s %10s %6s   %s (%s activations)\n' "$name" "$gd" "$ld" "$(ratio "$gd" "$ld")" \
    "$gp" "$lp" "$(ratio "$gp" "$lp")" "$kern" "$act"
}

row f16 "$MODELS/bench-llama-f16.gguf" "" f32 1
for q in q8_0 q4_0 q4_k_m; do
  f=$MODELS/bench-llama-$q.gguf
  if [[ -f $f ]]; then row "$q" "$f" "" q8 1; else echo "$q: no $f (needs llama-cpp-python's quantizer)"; fi
done
for wf in int8-channel int4-g128 nf4-b64; do row "$wf" "$MODELS/bench-llama-f16.gguf" "$wf" f32 0; done

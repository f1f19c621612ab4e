#!/usr/bin/env bash
# gridbench's CPU engine against llama.cpp on the same GGUF files, in one run:
# batch-1 decode tokens/s and PROMPT-token prefill tokens/s of each, side by side
# with their ratios, on the f16 model that tools/make_bench_gguf.py writes (~195M
# parameters, llama architecture) and on llama.cpp's own q8_0, q4_0 and K-quant
# (q4_K_M, q5_K_M, q3_K_M, q2_K) quantizations of it; then gridbench's own
# int8-channel, int4-g128 and nf4-b64 (quantized by gridbench from the f16 file at
# load); and Hugging Face transformers in f32 on the f16 file's weights
# (bench/hf_speed.py), with each row's decode ratio to it (the issue's 3x target).
#
# The engines take turns: each of REPEATS rounds runs gridbench, then llama.cpp
# (then transformers, on the f16 row), one measurement each, and the table gives
# the medians, so that a machine whose load changes (other builds) moves both
# alike. `uptime` is printed before and after: on a loaded machine the figures are
# noisy, the ratios of interleaved runs less so.
#
# gridbench runs the GGUF q-types with 8-bit activations (--activations q8), as
# llama.cpp does, and f32 activations for everything else; each row names the
# kernels its linear layers ran. llama.cpp runs through llama-cpp-python
# (bench/llamacpp_speed.py); where it is absent, its columns say so and the
# gridbench figures are still printed. Not a test: a benchmark to run by hand.
# gridbench's kernels are AVX2 ones; to compare like with like on a CPU with
# AVX-512, build llama.cpp for AVX2 too:
#   CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \
#     -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF" \
#     pip install --force-reinstall --no-deps --no-cache-dir llama-cpp-python
# (seen on an Intel Xeon with AMX: pip's native build, llama-cpp-python 0.3.36,
# crashed in ggml_backend_amx_mul_mat at the first eval of a q8_0 file, while the
# f16 file ran. --no-cache-dir matters: without it pip reinstalls a cached wheel
# of the same version, native build included, and CMAKE_ARGS are never used. A
# row whose llama.cpp columns are "-" while f16's are filled is that crash.)
#
#   bench/engine_vs_llamacpp.sh [BUILD_DIR]
# Environment: PYTHON (default /work/venv-ref/bin/python, else python3), THREADS (2),
# MODELS (BUILD_DIR/bench-models), PROMPT (128), STEPS (64), REPEATS (5),
# HF (1: measure transformers; 0: skip it), HF_STEPS (its decode steps, default STEPS),
# ROWS (the row names to run, default all).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
THREADS=${THREADS:-2}
MODELS=${MODELS:-$BUILD/bench-models}
PROMPT=${PROMPT:-128}
STEPS=${STEPS:-64}
REPEATS=${REPEATS:-5}
HF=${HF:-1}
HF_STEPS=${HF_STEPS:-$STEPS}
ROWS=${ROWS:-}
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
have_hf=0
if [[ $HF == 1 ]]; then
  if "$PYTHON" -c 'import torch, transformers' 2>/dev/null; then have_hf=1
  else echo "NOTE: torch/transformers are not installed for $PYTHON: no transformers f32 figures."; fi
fi
if [[ ! -f $MODELS/bench-llama-f16.gguf || ( $have_llama == 1 && ! -f $MODELS/bench-llama-q2_k.gguf ) ]]; then
  "$PYTHON" tools/make_bench_gguf.py --out "$MODELS" >/dev/null 2>&1 || true
fi
[[ -f $MODELS/bench-llama-f16.gguf ]] || { echo "no $MODELS/bench-llama-f16.gguf (tools/make_bench_gguf.py)" >&2; exit 2; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); threads $THREADS"
echo "uptime at start: $(uptime)"
echo "decode: batch 1, $STEPS steps after a $PROMPT-token prompt; prefill: $PROMPT tokens;" \
     "medians of $REPEATS interleaved rounds (gridbench, llama.cpp, transformers)"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "-" }'; }
# The median of the numbers on stdin ("-" when there are none).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
                                              else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# transformers f32 on the f16 file's weights, measured first (interleaved with
# gridbench f16 and llama.cpp f16), so that every row can give its ratio to it.
hf_dec="-" hf_pre="-"
declare -A GD GP LD LP KERN
measure() {  # NAME FILE WEIGHT_FORMAT ACTIVATIONS LLAMA(0/1) HF(0/1)
  local name=$1 file=$2 wf=$3 act=$4 llama=$5 hf=$6 out r gds="" gps="" lds="" lps="" hds="" hps="" a b
  for ((r = 0; r < REPEATS; ++r)); do
    if out=$("$BENCH" --brief --model "gguf:$file" ${wf:+--weight-format "$wf"} --activations "$act" \
             --threads "$THREADS" --prompt-tokens "$PROMPT" --steps "$STEPS" --repeats 1 2>&1); then
      read -r a b <<<"$(sed -n 1p <<<"$out")"
      gds+="$a"$'\n' gps+="$b"$'\n'
      KERN[$name]=$(sed -n 2p <<<"$out")
    else
      KERN[$name]="engine_bench failed: $(tail -1 <<<"$out")"
    fi
    if [[ $llama == 1 && $have_llama == 1 ]] &&
       out=$("$PYTHON" bench/llamacpp_speed.py "$file" --threads "$THREADS" --prompt-tokens "$PROMPT" \
             --steps "$STEPS" --repeats 1 2>/dev/null); then
      read -r a b <<<"$out"
      lds+="$a"$'\n' lps+="$b"$'\n'
    fi
    if [[ $hf == 1 && $have_hf == 1 ]] &&
       out=$("$PYTHON" bench/hf_speed.py "$file" --threads "$THREADS" --prompt-tokens "$PROMPT" \
             --steps "$HF_STEPS" --repeats 1 2>/dev/null); then
      read -r a b <<<"$out"
      hds+="$a"$'\n' hps+="$b"$'\n'
    fi
  done
  GD[$name]=$(printf '%s' "$gds" | median)
  GP[$name]=$(printf '%s' "$gps" | median)
  LD[$name]=$(printf '%s' "$lds" | median)
  LP[$name]=$(printf '%s' "$lps" | median)
  if [[ $llama == 1 && $have_llama == 0 ]]; then LD[$name]=absent LP[$name]=absent; fi
  if [[ $hf == 1 && $have_hf == 1 ]]; then
    hf_dec=$(printf '%s' "$hds" | median)
    hf_pre=$(printf '%s' "$hps" | median)
  fi
}

names=() acts=()
want() { [[ -z $ROWS || " $ROWS " == *" $1 "* ]]; }
if want f16; then measure f16 "$MODELS/bench-llama-f16.gguf" "" f32 1 "$HF"; names+=(f16); acts+=(f32); fi
for q in q8_0 q4_0 q4_k_m q5_k_m q3_k_m q2_k; do
  want "$q" || continue
  f=$MODELS/bench-llama-$q.gguf
  if [[ -f $f ]]; then measure "$q" "$f" "" q8 1 0; names+=("$q"); acts+=(q8)
  else echo "$q: no $f (needs llama-cpp-python's quantizer)"; fi
done
for wf in int8-channel int4-g128 nf4-b64; do
  want "$wf" || continue
  measure "$wf" "$MODELS/bench-llama-f16.gguf" "$wf" f32 0 0; names+=("$wf"); acts+=(f32)
done

echo "uptime at end:   $(uptime)"
echo "transformers f32 (torch, $THREADS threads) on the f16 file's weights: decode $hf_dec tokens/s ($HF_STEPS steps)," \
     "prefill $hf_pre tokens/s"
printf '%-13s %9s %9s %6s   %9s %9s %6s   %7s   %s\n' format "gb dec/s" "lcpp dec" ratio "gb pre/s" "lcpp pre" ratio \
  "dec/hf" "gridbench kernels"
for i in "${!names[@]}"; do
  n=${names[$i]}
  printf '%-13s %9s %9s %6s   %9s %9s %6s   %7s   %s (%s activations)\n' "$n" "${GD[$n]}" "${LD[$n]}" \
    "$(ratio "${GD[$n]}" "${LD[$n]}")" "${GP[$n]}" "${LP[$n]}" "$(ratio "${GP[$n]}" "${LP[$n]}")" \
    "$(ratio "${GD[$n]}" "$hf_dec")" "${KERN[$n]}" "${acts[$i]}"
done

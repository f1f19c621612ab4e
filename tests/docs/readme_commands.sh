#!/usr/bin/env bash
# Runs every command line of README.md's ```sh blocks, as a user pasting them into
# a shell would, and fails when one fails (exits non-zero) or cannot be parsed by
# bash. Usage: readme_commands.sh SOURCE_DIR BIN_DIR
#
# The rule, as README.md states it:
#  - A line is a command unless it is blank or a comment (`# ...`); a line ending in
#    `\` continues on the next. Lines run in README order, each with `bash -c`, in
#    one scratch directory, with BIN_DIR first on PATH (the built gridbench,
#    gridbench-job, gridbench-coordinator, gridbench-worker).
#  - Not run: a line whose comment says `needs:` (a GPU, a model directory, root
#    and apt, another host), and one whose comment says `slow:` unless
#    GB_README_SLOW=1. Each skip is printed with its reason.
#  - The scratch directory holds what the README's lines name, as at the
#    repository root: experiments/ and tests/ (links to the source tree), and the
#    inputs a user would have: tokenizer.json (tests/data/tokenizer/
#    tiny_bytelevel.json), JOB.json (a roofline job), token (a shared token).
#  - A coordinator started with `--listen HOST:7878` (or 7879) listens on port 0
#    (a free port) instead, and later lines' 7878 (7879) become the port it got, so
#    that the run neither depends on nor disturbs a coordinator already here.
#  - A line ending in `&` starts a daemon in the background; the runner waits until
#    a coordinator prints "listening on" or a worker logs "registered", and stops
#    every daemon (SIGTERM) at the end.
set -u
src=${1:?usage: readme_commands.sh SOURCE_DIR BIN_DIR}
bin=${2:?usage: readme_commands.sh SOURCE_DIR BIN_DIR}
readme="$src/README.md"
work=$(mktemp -d "${TMPDIR:-/tmp}/gb_readme.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  if [ "${failed:-0}" = 0 ]; then rm -rf "$work"; else echo "(scratch directory kept: $work)"; fi
}
trap cleanup EXIT

declare -A port=()  # README port -> the port its coordinator got

ln -s "$src/experiments" "$work/experiments"
ln -s "$src/tests" "$work/tests"
cp "$src/tests/data/tokenizer/tiny_bytelevel.json" "$work/tokenizer.json"
printf 'readme-token\n' > "$work/token"
cat > "$work/JOB.json" <<'EOF'
{"kind": "roofline", "hash": "readme", "params": {"model": "qwen1.5-7b", "weight_format": "f16",
 "kv_format": "f16", "device": "rtx4090"}}
EOF
export PATH="$bin:$PATH"
export TMPDIR="$work"  # the workers' default work directories
unset GRIDBENCH_COORDINATOR GRIDBENCH_DB GRIDBENCH_TOKEN GRIDBENCH_JOB

# The command lines, one per record (continuations joined), with their line number.
mapfile -t commands < <(awk '
  /^```sh[[:space:]]*$/ { insh = 1; next }
  /^```/ { insh = 0; next }
  !insh { next }
  {
    line = $0
    if (cont != "") { cmd = cmd " " line } else { cmd = line; start = NR }
    if (line ~ /\\$/) { sub(/\\$/, "", cmd); cont = 1; next }
    cont = ""
    trimmed = cmd; sub(/^[[:space:]]+/, "", trimmed)
    if (trimmed == "" || substr(trimmed, 1, 1) == "#") next
    print start "\t" cmd
  }' "$readme")

ran=0 skipped=0 failed=0
for record in "${commands[@]}"; do
  lineno=${record%%$'\t'*}
  cmd=${record#*$'\t'}
  if [[ "$cmd" =~ \#[[:space:]]*needs:(.*)$ ]]; then
    echo "skip README.md:$lineno (needs:${BASH_REMATCH[1]}): $cmd"
    skipped=$((skipped + 1))
    continue
  fi
  if [[ "$cmd" =~ \#[[:space:]]*slow:(.*)$ ]] && [ "${GB_README_SLOW:-0}" != 1 ]; then
    echo "skip README.md:$lineno (slow:${BASH_REMATCH[1]}; GB_README_SLOW=1 runs it): $cmd"
    skipped=$((skipped + 1))
    continue
  fi
  run=$cmd
  listen_as=""
  if [[ "$run" =~ ^gridbench-coordinator\ .*--listen\ [^[:space:]]*:(787[89])([[:space:]]|$) ]]; then
    listen_as=${BASH_REMATCH[1]}
    run=${run/:$listen_as/:0}
  fi
  for p in "${!port[@]}"; do run=${run//$p/${port[$p]}}; done
  ran=$((ran + 1))
  if [[ "$run" =~ ^(.*[^[:space:]])[[:space:]]*\&[[:space:]]*(#.*)?$ ]]; then
    daemon=${BASH_REMATCH[1]}
    log="$work/daemon-$lineno"
    (cd "$work" && exec bash -c "exec $daemon" >"$log.out" 2>"$log.err") &
    pids+=($!)
    ready=""
    for _ in $(seq 1 200); do
      if grep -q "listening on" "$log.out" 2>/dev/null || grep -q "registered" "$log.err" 2>/dev/null; then
        ready=1
        break
      fi
      kill -0 "${pids[-1]}" 2>/dev/null || break
      sleep 0.05
    done
    if [ -n "$ready" ] && [ -n "$listen_as" ]; then
      port[$listen_as]=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log.out" | head -1)
    fi
    if [ -z "$ready" ]; then
      echo "FAIL README.md:$lineno: the daemon did not come up: $cmd"
      sed 's/^/    /' "$log.err" | tail -20
      failed=$((failed + 1))
    else
      echo "ok   README.md:$lineno (background): $cmd"
    fi
    continue
  fi
  out="$work/out-$lineno"
  (cd "$work" && timeout 300 bash -c "$run") >"$out" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL README.md:$lineno (exit $rc): $cmd"
    sed 's/^/    /' "$out" | tail -20
    failed=$((failed + 1))
  else
    echo "ok   README.md:$lineno: $cmd"
  fi
done
echo "README.md: $ran command lines run, $failed failed, $skipped skipped"
[ "$ran" -gt 0 ] && [ "$failed" -eq 0 ]

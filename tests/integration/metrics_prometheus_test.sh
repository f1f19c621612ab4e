#!/usr/bin/env bash
# The coordinator's --metrics-listen endpoint as Prometheus sees it: the real
# gridbench-coordinator and a gridbench-worker on loopback run a small sleep grid;
# the scrape passes `promtool check metrics` (the exposition format and Prometheus'
# naming rules) and shows the grid's leases and jobs; then a real Prometheus server
# scrapes the coordinator every second and its query API returns the same values
# and up == 1.
# Usage: metrics_prometheus_test.sh BIN_DIR. Exit 77 (ctest: skipped) with the
# reason when promtool/prometheus are not installed (Debian package prometheus,
# which `scripts/install-deps.sh --test-tools` installs). Stops what it started.
set -euo pipefail

BIN=$(cd "$1" && pwd)
SKIP=77
skip() {
  echo "SKIPPED: $*"
  exit $SKIP
}
command -v promtool > /dev/null ||
  skip "promtool is not installed (Debian package prometheus; scripts/install-deps.sh --test-tools)"

DIR=$(mktemp -d /tmp/gridbench-metrics-test.XXXXXX)
PIDS=()
cleanup() {
  local rc=$?
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2> /dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2> /dev/null || true
  done
  if [ $rc -ne 0 ] && [ $rc -ne $SKIP ]; then
    for f in "$DIR"/coord.err "$DIR"/worker.err "$DIR"/prometheus.err "$DIR"/scrape.txt; do
      [ -f "$f" ] && { echo "---- $f (tail) ----"; tail -n 30 "$f"; }
    done
    echo "(kept $DIR)"
  else
    rm -rf "$DIR"
  fi
  exit $rc
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
wait_for() {  # wait_for SECONDS COMMAND...
  local end=$(($(date +%s) + $1))
  shift
  until "$@"; do
    [ "$(date +%s)" -lt $end ] || return 1
    sleep 0.2
  done
}
# http_get PORT PATH: the body of a GET on 127.0.0.1 (bash's /dev/tcp: no curl on a
# bare Debian), or nothing when the status is not 200.
http_get() {
  local reply
  reply=$(
    { exec 3<> "/dev/tcp/127.0.0.1/$1"; } 2> /dev/null || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    cat <&3
  ) 2> /dev/null || return 1
  [[ "$reply" == "HTTP/1."?" 200 "* ]] || return 1
  printf '%s\n' "$reply" | tr -d '\r' | sed '1,/^$/d'
}
free_port() {
  local p
  while true; do
    p=$((20000 + RANDOM % 40000))
    { (exec 3<> "/dev/tcp/127.0.0.1/$p"); } 2> /dev/null || { echo $p; return; }
  done
}

# ---- the coordinator, a worker, a grid ----
"$BIN/gridbench-coordinator" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --db "$DIR/coord.db" \
  > "$DIR/coord.out" 2> "$DIR/coord.err" &
PIDS+=($!)
wait_for 10 grep -qs '^metrics on ' "$DIR/coord.out" || fail "the coordinator printed no 'metrics on' line"
[ "$(sed -n 1p "$DIR/coord.out" | cut -d' ' -f1-2)" = "listening on" ] || fail "the first line is not 'listening on'"
ADDR=$(sed -n 's/^listening on //p' "$DIR/coord.out")
METRICS=$(sed -n 's/^metrics on //p' "$DIR/coord.out")
MPORT=${METRICS##*:}
"$BIN/gridbench-worker" --coordinator "$ADDR" --device cpu --slots 2 --no-measure --work-dir "$DIR/worker" \
  > /dev/null 2> "$DIR/worker.err" &
PIDS+=($!)
JOBS=4
cat > "$DIR/grid.json" << 'EOF'
{"name": "metric-naps", "axes": {"seconds": [0.1, 0.15, 0.2, 0.25]}, "measure": ["sleep"]}
EOF
timeout 60 "$BIN/gridbench" submit "$DIR/grid.json" --coordinator "$ADDR" --wait > /dev/null 2> "$DIR/submit.err" ||
  fail "the grid did not finish"

# ---- promtool on a scrape ----
http_get "$MPORT" /metrics > "$DIR/scrape.txt" || fail "GET /metrics on $METRICS failed"
if ! promtool check metrics < "$DIR/scrape.txt" > "$DIR/promtool.out" 2>&1; then
  cat "$DIR/promtool.out"
  fail "promtool check metrics rejected the scrape"
fi
[ ! -s "$DIR/promtool.out" ] || { cat "$DIR/promtool.out"; fail "promtool check metrics printed problems"; }
sample() { awk -v k="$1" '$1 == k { print $2 }' "$DIR/scrape.txt"; }
[ "$(sample gridbench_leases_granted_total)" = "$JOBS" ] || fail "leases granted $(sample gridbench_leases_granted_total), expected $JOBS"
[ "$(sample 'gridbench_jobs{grid="metric-naps",state="succeeded"}')" = "$JOBS" ] || fail "succeeded jobs in the scrape"
[ "$(sample gridbench_lease_latency_seconds_count)" = "$JOBS" ] || fail "lease latency count"
[ "$(sample 'gridbench_workers{state="active"}')" = 1 ] || fail "active workers"
echo "promtool check metrics: ok ($(grep -vc '^#' "$DIR/scrape.txt") samples)"

# ---- a real Prometheus scrapes it ----
command -v prometheus > /dev/null || skip "promtool passed; the prometheus server is not installed for the scrape"
PPORT=$(free_port)
cat > "$DIR/prometheus.yml" << EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: gridbench
    static_configs:
      - targets: ["$METRICS"]
EOF
promtool check config "$DIR/prometheus.yml" > /dev/null || fail "promtool check config"
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/tsdb" \
  --web.listen-address="127.0.0.1:$PPORT" > "$DIR/prometheus.out" 2> "$DIR/prometheus.err" &
PIDS+=($!)
ready() { http_get "$PPORT" /-/ready > /dev/null; }
wait_for 30 ready || fail "prometheus did not get ready on 127.0.0.1:$PPORT"
# query EXPR: the value of the first result of an instant query ('' if none).
query() {
  http_get "$PPORT" "/api/v1/query?query=$1" | sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p'
}
scraped() { [ "$(query 'gridbench_leases_granted_total')" = "$JOBS" ]; }
wait_for 30 scraped || fail "prometheus never saw gridbench_leases_granted_total $JOBS: $(http_get "$PPORT" '/api/v1/targets')"
[ "$(query 'up%7Bjob%3D%22gridbench%22%7D')" = 1 ] || fail "up{job=\"gridbench\"} is not 1"
[ "$(query 'gridbench_jobs%7Bstate%3D%22succeeded%22%7D')" = "$JOBS" ] || fail "gridbench_jobs{state=succeeded} in prometheus"
echo "PASS: prometheus scraped the coordinator: leases granted $JOBS, up 1"

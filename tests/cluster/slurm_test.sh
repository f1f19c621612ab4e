#!/usr/bin/env bash
# gridbench workers on a real Slurm: a private single-node cluster from Debian's
# slurm-wlm (slurmctld and slurmd on loopback ports, proctrack/linuxproc,
# task/none, munged with a fresh key on its own socket, everything in a temporary
# directory), a gridbench-coordinator on loopback, and CPU workers started as an
# array by `gridbench slurm submit`. Checked:
#   - the array's tasks register as distinct workers and finish a sleep grid;
#   - a task requeued (`scontrol requeue`) while its worker runs a job starts again
#     under the same name, and the grid still ends with every job recorded exactly
#     once (the interrupted run is not the recorded one);
#   - `gridbench slurm status` finds the array, `gridbench slurm cancel --drain`
#     drains its workers (they exit 0), `gridbench slurm cancel` ends another one.
# Usage: slurm_test.sh BIN_DIR. Exit 77 (ctest: skipped) with the reason when Slurm
# or munge is not installed (Debian: slurm-wlm munge, which
# `scripts/install-deps.sh --test-tools` installs), when not root (slurmd must be),
# or when the daemons do not start here. Everything it started is stopped on exit.
set -euo pipefail

BIN=$(cd "$1" && pwd)
SKIP=77
skip() {
  echo "SKIPPED: $*"
  exit $SKIP
}
for cmd in slurmctld slurmd munged munge sbatch squeue scontrol scancel sinfo sqlite3; do
  command -v "$cmd" > /dev/null ||
    skip "$cmd is not installed (Debian packages slurm-wlm munge sqlite3; scripts/install-deps.sh --test-tools)"
done
[ "$(id -u)" -eq 0 ] || skip "slurmd must run as root to start jobs; run this test as root"
for prog in gridbench gridbench-coordinator gridbench-worker gridbench-job; do
  [ -x "$BIN/$prog" ] || { echo "FAIL: $BIN/$prog is missing"; exit 1; }
done

T0=$(date +%s.%N)
DIR=$(mktemp -d /tmp/gridbench-slurm-test.XXXXXX)
chmod 755 "$DIR"
PIDS=()
JOBS_SUBMITTED=()
cleanup() {
  local rc=$?
  export SLURM_CONF="$DIR/slurm.conf"
  for job in "${JOBS_SUBMITTED[@]}"; do scancel "$job" 2> /dev/null || true; done
  for _ in $(seq 50); do [ -z "$(squeue -h 2> /dev/null)" ] && break; sleep 0.1; done
  # One by one in reverse start order (coordinator, slurmd, slurmctld, munged): each
  # gets SIGTERM and 5 s before SIGKILL.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[i]}" 2> /dev/null || continue
    for _ in $(seq 50); do kill -0 "${PIDS[i]}" 2> /dev/null || break; sleep 0.1; done
    kill -9 "${PIDS[i]}" 2> /dev/null || true
  done
  if [ $rc -ne 0 ] && [ $rc -ne $SKIP ]; then
    for f in "$DIR"/coord.err "$DIR"/log/slurmctld.log "$DIR"/log/slurmd.log "$DIR"/logs/*.out; do
      [ -f "$f" ] && { echo "---- $f (tail) ----"; tail -n 40 "$f"; }
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
# wait_for SECONDS DESCRIPTION COMMAND...: polls every 0.2 s.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local end=$(($(date +%s) + seconds))
  until "$@"; do
    [ "$(date +%s)" -lt $end ] || return 1
    sleep 0.2
  done
}
# A TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  local p
  while true; do
    p=$((20000 + RANDOM % 40000))
    { (exec 3<> "/dev/tcp/127.0.0.1/$p"); } 2> /dev/null || { echo $p; return; }
  done
}
elapsed() { echo "$(date +%s.%N) $T0" | awk '{printf "%.1f", $1 - $2}'; }
q() { sqlite3 -cmd ".timeout 5000" "$DIR/coord.db" "$1"; }

# ---- munge and Slurm ----
mkdir -p "$DIR/munge" "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/logs"
chmod 700 "$DIR/munge"
head -c 1024 /dev/urandom > "$DIR/munge/munge.key"
chmod 400 "$DIR/munge/munge.key"
MUNGE_SOCKET="$DIR/munge/munge.socket"
munged --foreground --force --key-file="$DIR/munge/munge.key" --socket="$MUNGE_SOCKET" \
  --pid-file="$DIR/munge/munged.pid" --seed-file="$DIR/munge/munged.seed" --log-file="$DIR/log/munged.log" \
  > "$DIR/log/munged.out" 2>&1 &
PIDS+=($!)
wait_for 10 "munged" test -S "$MUNGE_SOCKET" || skip "munged did not start here: $(tail -n 3 "$DIR/log/munged.out")"
munge -S "$MUNGE_SOCKET" -n > /dev/null || skip "munge cannot encode with the private munged"

HOST=$(hostname -s)
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
while [ "$SLURMD_PORT" = "$CTLD_PORT" ]; do SLURMD_PORT=$(free_port); done
cat > "$DIR/slurm.conf" << EOF
# A private single-node Slurm for gridbench's test (tests/cluster/slurm_test.sh).
ClusterName=gridbenchtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Four one-CPU tasks on whatever this machine has.
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
# A requeued or cancelled task's processes get SIGTERM, then SIGKILL 2 s later.
KillWait=2
MinJobAge=300
InactiveLimit=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN
PartitionName=test Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$DIR/slurm.conf"
slurmctld -D -i -f "$SLURM_CONF" > "$DIR/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" > "$DIR/log/slurmd.out" 2>&1 &
PIDS+=($!)
node_idle() { [ "$(sinfo -h -n "$HOST" -o %T 2> /dev/null)" = "idle" ]; }
wait_for 30 "the node idle" node_idle ||
  skip "Slurm did not start here: $(tail -n 3 "$DIR/log/slurmctld.out" "$DIR/log/slurmd.out" | tr '\n' ' ')"
echo "slurm up after $(elapsed) s (slurmctld :$CTLD_PORT, slurmd :$SLURMD_PORT)"

# ---- the coordinator and the grid ----
"$BIN/gridbench-coordinator" --listen 127.0.0.1:0 --db "$DIR/coord.db" --lease-ms 1500 \
  > "$DIR/coord.out" 2> "$DIR/coord.err" &
PIDS+=($!)
wait_for 10 "the coordinator" grep -qs '^listening on ' "$DIR/coord.out" || fail "the coordinator did not start"
ADDR=$(sed -n 's/^listening on //p' "$DIR/coord.out" | head -n 1)
JOBS=12
seconds=$(for i in $(seq 0 $((JOBS - 1))); do printf '%s%s' "$([ $i -gt 0 ] && echo ,)" "1.$((20 + i * 5))"; done)
cat > "$DIR/grid.json" << EOF
{"name": "slurm-naps", "axes": {"seconds": [$seconds]}, "measure": ["sleep"]}
EOF
"$BIN/gridbench" submit "$DIR/grid.json" --coordinator "$ADDR" > /dev/null

# ---- the worker array ----
JOB=$("$BIN/gridbench" slurm submit --coordinator "$ADDR" --device cpu --tasks 3 --time 10 \
  --log-dir "$DIR/logs" 2> "$DIR/submit.err") || fail "slurm submit: $(cat "$DIR/submit.err")"
JOBS_SUBMITTED+=("$JOB")
[[ "$JOB" =~ ^[0-9]+$ ]] || fail "slurm submit printed '$JOB', not a job id"
echo "array $JOB submitted after $(elapsed) s"
three_running() { [ "$(squeue -h -r -j "$JOB" -t RUNNING -o %i 2> /dev/null | wc -l)" -eq 3 ]; }
wait_for 30 "3 running tasks" three_running || fail "the array's tasks did not all start"
registered() { [ "$(q "SELECT COUNT(*) FROM workers WHERE name LIKE '%:cpu:slurm-${JOB}_%'")" -eq 3 ]; }
wait_for 30 "3 workers registered" registered || fail "the 3 workers did not register"

STATUS=$("$BIN/gridbench" slurm status --coordinator "$ADDR")
for t in 0 1 2; do
  grep -q "^${JOB}_$t .*RUNNING" <<< "$STATUS" || fail "slurm status does not show ${JOB}_$t running: $STATUS"
done

# ---- requeue task 1 while its worker runs a job ----
VICTIM="${JOB}_1"
# Mid-grid: once 3 jobs are done, a job that task 1's worker leased less than
# 0.5 s ago (at least 0.7 s of its sleep is left when the requeue kills it).
NOW_MS="CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
FRESH="FROM jobs WHERE state IN ('leased', 'running') AND lease_owner LIKE '%:slurm-$VICTIM' AND started_ms > $NOW_MS - 500"
victim_busy() {
  [ "$(q "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'")" -ge 3 ] && [ "$(q "SELECT COUNT(*) $FRESH")" -ge 1 ]
}
wait_for 30 "task 1 starting a job mid-grid" victim_busy || fail "task 1's worker ran no job after the first 3"
REQUEUED_MS=$(q "SELECT $NOW_MS")
INTERRUPTED=$(q "SELECT id $FRESH LIMIT 1")
DONE_BEFORE=$(q "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'")
scontrol requeue "$VICTIM"
echo "requeued $VICTIM after $(elapsed) s while it ran job $INTERRUPTED ($DONE_BEFORE of $JOBS done)"
# A requeued job may not start for about 2 minutes (Slurm sets its begin time);
# let it start now.
restarted() {
  scontrol update JobId="$VICTIM" StartTime=now > /dev/null 2>&1 || true
  local starts
  starts=$(grep -c "gridbench slurm: task $VICTIM" "$DIR/logs/gridbench-worker-$VICTIM.out" 2> /dev/null || true)
  [ "${starts:-0}" -ge 2 ]
}
wait_for 60 "task 1 restarted" restarted || fail "$VICTIM did not start again after the requeue"
grep -q "(restart 1)" "$DIR/logs/gridbench-worker-$VICTIM.out" || fail "the restarted task does not say restart 1"

unfinished() { q "SELECT COUNT(*) FROM v_jobs WHERE grid = 'slurm-naps' AND state IN ('pending', 'leased', 'running')"; }
grid_done() { [ "$(unfinished)" -eq 0 ]; }
wait_for 90 "the grid to finish" grid_done || fail "the grid did not finish: $(unfinished) left"
echo "grid finished after $(elapsed) s"

# ---- every job recorded exactly once ----
expect() {  # expect WHAT SQL VALUE
  local got
  got=$(q "$2")
  [ "$got" = "$3" ] || fail "$1: got $got, expected $3 ($2)"
}
IN_GRID="(SELECT job_id FROM v_jobs WHERE grid = 'slurm-naps')"
expect "jobs" "SELECT COUNT(*) FROM v_jobs WHERE grid = 'slurm-naps'" $JOBS
expect "succeeded jobs" "SELECT COUNT(*) FROM v_jobs WHERE grid = 'slurm-naps' AND state = 'succeeded'" $JOBS
expect "succeeded runs" "SELECT COUNT(*) FROM runs WHERE state = 'succeeded' AND job_id IN $IN_GRID" $JOBS
expect "jobs with other than one succeeded run" \
  "SELECT COUNT(*) FROM (SELECT job_id FROM runs WHERE state = 'succeeded' AND job_id IN $IN_GRID
   GROUP BY job_id HAVING COUNT(*) <> 1)" 0
expect "result runs that succeeded" \
  "SELECT COUNT(*) FROM jobs j JOIN runs r ON r.id = j.result_run_id WHERE r.state = 'succeeded' AND j.id IN $IN_GRID" \
  $JOBS
expect "result rows" "SELECT COUNT(*) FROM results WHERE run_id IN (SELECT id FROM runs WHERE job_id IN $IN_GRID)" $JOBS
expect "result rows of the recorded runs" \
  "SELECT COUNT(*) FROM results res JOIN jobs j ON j.result_run_id = res.run_id WHERE j.id IN $IN_GRID" $JOBS
# The interrupted run ended without results, and another run was recorded.
expect "runs of the interrupted job that did not succeed" \
  "SELECT COUNT(*) > 0 FROM runs WHERE job_id = $INTERRUPTED AND state <> 'succeeded'" 1
expect "results of the interrupted job" \
  "SELECT COUNT(*) FROM results WHERE run_id IN (SELECT id FROM runs WHERE job_id = $INTERRUPTED)" 1
WORKERS_USED=$(q "SELECT COUNT(DISTINCT owner) FROM runs WHERE state = 'succeeded' AND job_id IN $IN_GRID")
[ "$WORKERS_USED" -ge 2 ] || fail "only $WORKERS_USED worker(s) ran the grid's jobs"
echo "exactly once: $JOBS jobs, $JOBS succeeded runs, $JOBS results; runs of the interrupted job $INTERRUPTED:" \
  "$(q "SELECT group_concat(state, ',') FROM runs WHERE job_id = $INTERRUPTED");" \
  "runs of the requeued task after its restart:" \
  "$(q "SELECT COUNT(*) FROM runs WHERE owner LIKE '%:slurm-$VICTIM' AND started_ms > $REQUEUED_MS")"

# ---- cancel --drain: the workers drain and exit 0 ----
"$BIN/gridbench" slurm cancel --coordinator "$ADDR" --drain
gone() { [ -z "$(squeue -h -r -j "$JOB" -o %i 2> /dev/null)" ]; }
wait_for 30 "the array to end" gone || fail "the array did not end after cancel --drain: $(squeue -r -j "$JOB")"
for t in 0 1 2; do
  grep -q "drained: every run reported; exiting" "$DIR/logs/gridbench-worker-${JOB}_$t.out" ||
    fail "the worker of ${JOB}_$t did not drain: $(tail -n 5 "$DIR/logs/gridbench-worker-${JOB}_$t.out")"
done
STATES=$(scontrol show job "$JOB" 2> /dev/null | sed -n 's/.*JobState=\([A-Z]*\).*/\1/p' | sort -u | tr '\n' ' ')
[ "$STATES" = "COMPLETED " ] || fail "the drained tasks ended as '$STATES', expected COMPLETED (exit 0)"

# ---- cancel: another array, ended at once ----
JOB2=$("$BIN/gridbench" slurm submit --coordinator "$ADDR" --device cpu --tasks 1 --time 5 --log-dir "$DIR/logs" \
  2> /dev/null)
JOBS_SUBMITTED+=("$JOB2")
"$BIN/gridbench" slurm status --format json | grep -q "\"array_job_id\": \"$JOB2\"" ||
  fail "slurm status --format json does not list array $JOB2"
"$BIN/gridbench" slurm cancel "$JOB2" | grep -q "cancelled 1 task(s): $JOB2" || fail "slurm cancel $JOB2"
gone2() { [ -z "$(squeue -h -r -j "$JOB2" -o %i 2> /dev/null)" ]; }
wait_for 20 "array $JOB2 to end" gone2 || fail "array $JOB2 still queued after slurm cancel"
"$BIN/gridbench" slurm status | grep -q "no gridbench worker arrays queued" || fail "slurm status after the cancels"

echo "PASS: Slurm worker array ran the grid in $(elapsed) s"

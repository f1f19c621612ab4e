// gridbench-worker: the worker daemon. It registers its device with a coordinator
// (proto/gridbench.proto), leases jobs, runs each one as a child gridbench-job
// process (as coordinator/embedded_runner.cc does locally), renews the leases with
// the progress the child prints, and reports how each run ended.
//
//   register -> while running {
//     lease (long-poll, while a slot is free and not draining) -> start a child
//     poll the children; renew each lease every lease_ms / 3 with its progress
//     on exit: CompleteJob (RESULT.json) or FailJob (failed / oom / timeout)
//   }
//
// Every rpc is asynchronous (one gRPC completion queue polled by the one loop), so a
// slow or absent coordinator never delays killing a child, a timeout or a signal.
//
// Behaviour (also in docs/ARCHITECTURE.md terms):
// - A child whose lease is cancelled (RenewLease says cancelled) or lost
//   (FAILED_PRECONDITION / NOT_FOUND) is killed at once (SIGTERM to its process
//   group, SIGKILL after kill_grace_ms) and nothing more is sent for that run.
// - Outcomes: exit 0 with a readable RESULT.json -> CompleteJob; exit 3 -> oom;
//   killed on the job's timeout_s -> timeout; anything else (exit 1, a crash by a
//   signal, an unreadable RESULT.json) -> failed with RESULT.json's error and the
//   tail of the child's stderr (progress lines left out).
// - While the coordinator is unavailable the worker keeps its children running,
//   keeps retrying renewals and the CompleteJob/FailJob of finished runs (each with
//   its own backoff) until they are accepted or refused, and re-registers with
//   exponential backoff (100 ms doubling to 5 s, +-20 % jitter). After any
//   unavailability it registers again before it leases again (RegisterWorker is
//   idempotent by name), so a restarted coordinator learns about it.
// - UNAUTHENTICATED or PERMISSION_DENIED from any rpc is fatal: the worker kills its
//   children and exits 1 with a message naming the token (a wrong token never
//   becomes right by retrying).
// - The first SIGTERM/SIGINT drains: Drain is sent, no new lease is taken (a
//   long-poll already in flight is allowed to finish, at most lease_wait_ms; a job
//   it brings is run), running children finish and are reported, then exit 0. A
//   second signal kills the children, reports them failed ("worker stopped") so
//   they are retried without waiting for lease expiry, and exits 130.
// - Each run lives in WORK_DIR/runs/HASH-runRUN_ID (job.json, result.json,
//   stdout.log, stderr.log, pid); WORK_DIR and the name are this process's alone
//   (claim_worker_identity below). Directories of succeeded runs are removed once
//   the coordinator accepted the result; the others stay for inspection. At start,
//   children left running by an earlier worker process on the same work dir (one
//   killed by SIGKILL) are killed.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "common/subprocess.h"
#include "worker/job_spec.h"

namespace gb::worker {

// Exit codes of gridbench-worker.
enum WorkerExit : int {
  kWorkerDrained = 0,      // drained after a signal, every run reported
  kWorkerError = 1,        // refused token, missing device or job binary, ...
  kWorkerUsage = 2,        // bad flags
  kWorkerInterrupted = 130 // a second signal: children killed
};

struct WorkerOptions {
  std::string coordinator;      // HOST:PORT of gridbench-coordinator
  std::string device = "cpu";   // "cpu" or "cuda:N"
  int slots = 1;                // children at once
  std::string token;            // sent as "authorization: Bearer TOKEN"; "" for none
  std::string name;             // "" -> HOST:DEVICE, or HOST:DEVICE#N when taken (claim_worker_identity)
  std::string tls_ca;           // PEM file: TLS is on when set
  std::string tls_cert;         // PEM files of a client certificate (optional)
  std::string tls_key;
  std::string work_dir;         // "" -> ${TMPDIR:-/tmp}/gridbench-worker-NAME
  // The quantized-model cache its children share (GRIDBENCH_QUANT_CACHE, engine/weights/
  // quantized_cache.h): "" -> $GRIDBENCH_QUANT_CACHE when set, else WORK_DIR/quant-cache.
  std::string cache_dir;
  std::string job_binary;       // "" -> $GRIDBENCH_JOB, else gridbench-job beside this binary
  int lease_wait_ms = 2000;     // LeaseJob long-poll bound
  int rpc_timeout_ms = 5000;    // deadline of every other rpc
  int kill_grace_ms = 2000;     // SIGTERM -> SIGKILL
  bool measure = true;          // measure copy bandwidth at registration
  uint64_t seed = 0;            // backoff jitter; 0: from the clock
};

// A device as registered (proto Device).
struct DeviceReport {
  std::string kind;  // "cpu" or "cuda"
  int index = 0;
  std::string name;
  double memory_bytes = 0;
  int compute_capability = 0;
  double copy_bandwidth_bytes_per_s = 0;
  double matmul_flops_per_s = 0;  // not measured yet: 0
  nlohmann::json to_json() const;
};

// "cpu" or "cuda:N" -> the device, measured when `measure` (cpu: a 16 MiB host
// memcpy; cuda: a 256 MiB device copy). An error names what exists when the device
// does not.
Result<DeviceReport> discover_device(const std::string& spec, bool measure);
// Whether `spec` is "cpu" or "cuda:N" (a flag error otherwise: exit 2).
Status check_device_spec(const std::string& spec);

// "progress FRACTION MESSAGE" (what gridbench-job prints to stderr); nullopt for any
// other line. The fraction is clamped to [0, 1].
struct Progress {
  double fraction = 0;
  std::string message;
};
std::optional<Progress> parse_progress_line(std::string_view line);

// Follows a growing stderr file: each poll reads what was appended since the last
// and returns the latest progress line among the whole lines read (nullopt if none).
class StderrFollower {
 public:
  explicit StderrFollower(std::string path = "") : path_(std::move(path)) {}
  std::optional<Progress> poll();

 private:
  std::string path_;
  uint64_t offset_ = 0;
  std::string partial_;
};

// The last `max_bytes` of a child's stderr without its progress lines.
std::string stderr_tail(const std::string& path, size_t max_bytes = 2000);

// How a run ended, from what the child left behind.
struct Outcome {
  enum Kind { kSucceeded, kFailed, kOom, kTimeout, kInvalid };  // kInvalid: exit 5 or 2, not retried
  Kind kind = kFailed;
  std::string error;      // for everything but kSucceeded
  JobResult result;       // for kSucceeded (and whatever RESULT.json said otherwise)
};
std::string_view outcome_name(Outcome::Kind k);  // "succeeded", "failed", "oom", "timeout"
Outcome classify_outcome(const ExitInfo& exit, bool timed_out, double timeout_s,
                         const Result<JobResult>& result, const std::string& stderr_tail);

// Exponential backoff: initial_ms doubling up to max_ms, each delay jittered by
// +-20 % (never above max_ms).
class Backoff {
 public:
  explicit Backoff(int initial_ms = 100, int max_ms = 5000, uint64_t seed = 0);
  int next_ms();
  void reset();
  int attempts() const { return attempts_; }

 private:
  int initial_ms_, max_ms_;
  double base_;
  int attempts_ = 0;
  std::mt19937_64 rng_;
};

// The daemon. run() returns the process exit code (WorkerExit).
class WorkerDaemon {
 public:
  explicit WorkerDaemon(WorkerOptions options);
  ~WorkerDaemon();
  WorkerDaemon(const WorkerDaemon&) = delete;
  WorkerDaemon& operator=(const WorkerDaemon&) = delete;

  // `signals` counts SIGTERM/SIGINT received: 1 drains, 2 or more stop at once.
  int run(const std::atomic<int>& signals);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A worker process's identity on this host: its name and its work directory, each
// held by this process alone for as long as it lives (`hold`).
//  - The name is claimed for `coordinator` (names are per coordinator) by binding
//    the abstract unix socket "gridbench-worker NAME @COORDINATOR" (Linux; one
//    namespace per network namespace, so per host for the processes that share
//    one, as the tasks of a Slurm job on one node do; the kernel frees it when the
//    process dies). Without `name` the first of HOST:DEVICE, HOST:DEVICE#2,
//    HOST:DEVICE#3, ... whose name and default work directory are free is taken,
//    so that several workers on one host each get their own (and a restarted one
//    its old name back).
//  - The work directory (`work_dir`, default ${TMPDIR:-/tmp}/gridbench-worker-NAME,
//    NAME with [^A-Za-z0-9._-] as '_') is locked with flock on WORK_DIR/worker.lock,
//    which holds the holder's pid and name.
// An explicit name or work directory that another live worker holds is an error
// that says so (*in_use set: the worker exits 2).
struct WorkerIdentity {
  std::string name;
  std::filesystem::path work_dir;
  std::shared_ptr<void> hold;  // the socket and the lock, released with the last copy
};
Result<WorkerIdentity> claim_worker_identity(const std::string& name, const std::string& device,
                                             const std::string& coordinator, const std::string& work_dir,
                                             bool* in_use = nullptr);

// One log line to stderr: "2025-01-31T12:00:00.123Z gridbench-worker[NAME] TEXT".
void log_line(const std::string& who, const std::string& text);

}  // namespace gb::worker

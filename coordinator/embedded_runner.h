// The embedded mode of `gridbench run`: the coordinator's logic in-process with N
// local job slots. Each job runs as a child gridbench-job process (theory-only
// jobs, with EmbeddedOptions::run_in_process, in this process, in batches); leases are taken
// from the store exactly as a remote worker would take them, so a run that is
// interrupted (Ctrl-C) or killed leaves the database consistent and the next run
// resumes: its own dead leases are reclaimed at once, others expire. A job of a
// timed kind (engine::JobKind::timed: speed, decode_curve, context_search) runs
// alone, whatever the number of slots. A job that runs on another job's output
// waits for it only while that job can still end here or elsewhere: one whose
// dependency is of another backend is left pending (EmbeddedSummary::waiting), one
// whose dependency ended without success ends invalid.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/grid/grid.h"
#include "coordinator/store/job_store.h"
#include "worker/job_spec.h"

namespace gb::coord {

struct EmbeddedOptions {
  std::string out_dir;     // job.json / result.json / stderr.log per job under out_dir/jobs/HASH/
  std::string job_binary;  // path of gridbench-job
  int slots = 1;
  // The device kind this process offers ("cpu" or "cuda"): only jobs whose placement
  // requirement names it (or "any") are leased; the others stay pending.
  std::string backend = "cpu";
  bool rerun = false;
  // This process's build id and device classes: a measured job's stored result is
  // reused only under them (ReuseKey); nullopt: every succeeded job is reused.
  std::optional<ReuseKey> reuse;
  int max_attempts = 3;
  int64_t lease_ms = 60000;
  double job_timeout_s = 0;  // 0: none
  // Runs a job in this process (the CLI passes worker::run_job). When set, the
  // theory-only kinds (a fraction of a millisecond each) are computed with it in
  // batches of `batch_size`: one transaction picks a batch, computes it and records
  // its results (JobStore::run_batch_in_process: a job goes from pending to
  // succeeded with no lease in between), with no child process; the other kinds
  // still run as children.
  std::function<worker::JobResult(const worker::JobSpec&)> run_in_process;
  int batch_size = 1000;
};

struct EmbeddedEvent {
  enum Kind { kStarted, kFinished } kind;
  std::string hash;
  std::string job_kind;
  std::string outcome;  // finished: succeeded | failed | oom | timeout | invalid (the job's outcome), or
                        // retry (it failed or timed out with attempts left: pending again)
  std::string detail;   // error text, or wall time; for a retry "REASON on attempt A of M: ERROR"
  int64_t done = 0;     // jobs of the grid in a terminal state
  int64_t total = 0;
  int64_t running = 0;
  int64_t failed = 0;
};

// Jobs that ended in this run, by outcome (each job once, however many attempts
// it took), and the retries on the way.
struct EmbeddedSummary {
  SubmitStats submitted;
  int64_t succeeded = 0;
  int64_t failed = 0;
  int64_t oom = 0;
  int64_t timeout = 0;
  int64_t invalid = 0;  // ended invalid at once, not retried: the job cannot run as given
  int64_t retried = 0;  // attempts that failed or timed out and sent their job back to pending
  bool interrupted = false;
  // Pending jobs left waiting for a dependency that this process does not run (a
  // job of another backend): not waited for, as that job is not.
  std::vector<DependencyWait> waiting;
  GridSummary final_state;
};

// The lease owner name of this process: "embedded:HOST:PID".
std::string embedded_owner();

// Submits `grid` to `store` and runs its pending jobs until none is left or *stop
// becomes true (then the children are terminated and their leases released).
Result<EmbeddedSummary> run_embedded(const Grid& grid, JobStore& store, const EmbeddedOptions& options,
                                     const std::atomic<bool>& stop,
                                     const std::function<void(const EmbeddedEvent&)>& on_event);

}  // namespace gb::coord

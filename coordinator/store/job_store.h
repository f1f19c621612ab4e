// JobStore: every grid, job, run, result and worker in one SQLite file (WAL,
// synchronous=NORMAL, every write in a transaction, versioned schema with
// migrations). The schema is documented in docs/RESULTS_SCHEMA.md.
//
// A job is identified by its content hash and shared by every grid that expands
// to it; each execution attempt is a run. Results belong to runs, so a rerun keeps
// the older results; a job's `result_run_id` is the run its report uses.
// Job states: pending -> leased -> running -> succeeded | failed | oom | invalid |
// timeout | cancelled. A lease that is not renewed expires and the job returns to pending
// while attempts < max_attempts, else it is failed with its last error.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/json_util.h"
#include "common/status.h"
#include "coordinator/grid/grid.h"
#include "engine/jobs/job_kinds.h"

struct sqlite3;

namespace gb::sqlite {
class StmtCache;
}

namespace gb::coord {

// kInvalid: the job cannot run as given (invalid parameters, a missing file, an unset
// ${VAR}): an outcome, never retried, like kOom.
enum class JobState { kPending, kLeased, kRunning, kSucceeded, kFailed, kOom, kInvalid, kTimeout, kCancelled };
std::string_view state_name(JobState s);
std::optional<JobState> parse_state(std::string_view s);
bool is_terminal(JobState s);

struct StoredJob {
  int64_t id = 0;
  std::string hash;
  std::string kind;
  Json params;
  std::string params_json;  // the stored text of params (canonical JSON)
  int repeat = 0;
  JobState state = JobState::kPending;
  int attempts = 0;
  int max_attempts = 3;
  std::string lease_owner;
  int64_t lease_expires_ms = 0;
  std::string error;
  int64_t result_run_id = 0;  // 0: none
  std::string req_device = "any";  // placement requirement: "any", "cpu" or "cuda"
  int64_t req_memory_bytes = 0;    // placement requirement: device memory in bytes
  double progress = 0;             // the current run's last reported progress (0 when none)
  std::string progress_message;    // and its message
};

// A pending job that runs on another job's output (a "job:HASH" parameter value,
// job_store_dependencies.cc) that has not succeeded, and that dependency.
struct DependencyWait {
  int64_t job_id = 0;
  std::string hash;
  std::string kind;
  std::string dep_hash;
  std::string dep_kind;
  JobState dep_state = JobState::kPending;
  std::string dep_error;
  std::string dep_req_device = "any";  // the dependency's placement requirement
  int64_t dep_req_memory_bytes = 0;
};

struct GridSummary {
  int64_t id = 0;
  std::string name;
  std::string source;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t total = 0;
  std::map<std::string, int64_t> by_state;  // state name -> count
};

struct Lease {
  int64_t job_id = 0;
  int64_t run_id = 0;
  std::string hash;
  std::string kind;
  Json params;
  std::string params_json;  // params as stored
  int repeat = 0;
  int attempt = 0;
  int64_t expires_ms = 0;
};

// What a finished run reports.
struct RunRecord {
  std::vector<engine::Metric> metrics;
  std::vector<engine::Series> series;
  Json device = Json::object();
  std::string engine_version;
  double wall_ms = 0;
};

// One metric of one job's current result, with the job's parameters.
struct ResultRow {
  int64_t job_id = 0;
  std::string hash;
  std::string kind;
  SharedJson params;  // shared by the rows of one job
  int repeat = 0;
  std::string metric;
  std::optional<double> value;
  std::string unit;
  std::string text;
  SharedJson device;
  std::string engine_version;
};

struct SubmitStats {
  int64_t grid_id = 0;
  int64_t jobs = 0;     // jobs in the grid
  int64_t reused = 0;   // already succeeded, kept
  int64_t queued = 0;   // pending now (new, reset by rerun, or unfinished)
  int64_t left_cancelled = 0;  // unfinished jobs that left the grid, wanted by no other: cancelled
};

// Placement capacity of a worker (or of a set of workers): the largest device
// memory in bytes per device kind, -1 when it has no device of that kind. A job
// fits when a device of its kind ("any": of any kind) has at least its memory.
struct DeviceCapacity {
  double any = -1;
  double cpu = -1;
  double cuda = -1;
  // Adds one device ("cpu" or "cuda"; other kinds count for "any" only).
  void add_device(std::string_view kind, double memory_bytes);
  void merge(const DeviceCapacity& other);
  bool can_run(std::string_view req_device, double memory_bytes) const;
};

// The placement requirement of a grid's job; submit_grid asks the job-kind
// registry (engine::job_requirement) unless given one of these.
using RequirementFn = std::function<engine::Requirement(const GridJob&)>;

// Who asks submit_grid to reuse finished jobs: a succeeded job of a measured kind
// (not theory-only) is reused only when its result run's engine_version equals
// `engine_version` and its device class (device_json kind + ":" + name, see
// device_class) is in `device_classes`, or the run names no device kind (`sleep`);
// otherwise it goes back to pending and runs again, its old run and results kept.
// Theory-only kinds are reused whatever built or ran them.
struct ReuseKey {
  std::string engine_version;               // worker::engine_version() of the runner
  std::vector<std::string> device_classes;  // e.g. "cpu:AMD EPYC 7B13", "cuda:NVIDIA H200"
};

// "KIND:NAME" of a run's device_json (e.g. {"kind": "cuda", "name": "NVIDIA H200"});
// empty when it names no kind.
std::string device_class(const Json& device);

// A worker daemon as the coordinator knows it (table `workers`).
struct WorkerRecord {
  int64_t id = 0;
  std::string name;              // unique; the owner of its leases
  Json devices = Json::array();  // [{kind, index, name, memory_bytes, ...}, ...]
  int slots = 1;
  std::string engine_version;
  std::string state = "active";  // "active", "draining" or "lost"
  int64_t registered_ms = 0;
  int64_t last_seen_ms = 0;
};

// One run and the lease state of its job, for telling a stale lease from a retry.
struct RunInfo {
  int64_t run_id = 0;
  int64_t job_id = 0;
  std::string hash;
  int attempt = 0;
  std::string owner;  // the worker it was leased to
  std::string state;  // the run's state (runs.state)
  JobState job_state = JobState::kPending;
  int64_t job_lease_run_id = 0;  // the job's current lease (0: none)
  std::string job_lease_owner;
  // Whether this run is its job's current lease held by `who`.
  bool held_by(const std::string& who) const {
    return (job_state == JobState::kLeased || job_state == JobState::kRunning) && job_lease_run_id == run_id &&
           job_lease_owner == who;
  }
};

struct WorkerUpdate {
  std::string name;
  std::string state;  // "active", "draining" or "lost"
  int64_t last_seen_ms = 0;
};

// Wall clock: milliseconds since the Unix epoch (the unit of every *_ms column).
int64_t now_ms();

// The schema version this code creates and understands (PRAGMA user_version).
int job_store_schema_version();

class JobStore {
 public:
  // Opens or creates the database, applies pending migrations, turns on WAL.
  static Result<std::unique_ptr<JobStore>> open(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  int schema_version() const;
  const std::string& path() const { return path_; }

  // Inserts or updates the grid and links its jobs, in one transaction. Jobs that
  // already succeeded are reused unless `rerun`; failed/oom/timeout/cancelled jobs
  // go back to pending with their attempts reset. Jobs that leave the grid are
  // unlinked (their queue_key recomputed from the grids that still link them, NULL
  // when none does), and those unfinished that no other uncancelled grid links are
  // cancelled ("left grid NAME on resubmission"; a leased or running one's run
  // ends cancelled, so its worker stops it at its next renewal).
  // Each job's placement requirement (jobs.req_device, req_memory_bytes) is set from
  // `requirement`, by default the job kind's (engine::job_requirement). With `reuse`,
  // a succeeded measured job is reused only under its build id and device classes
  // (ReuseKey); without, every succeeded job is.
  Result<SubmitStats> submit_grid(const Grid& grid, bool rerun, int max_attempts = 3,
                                  const RequirementFn& requirement = {},
                                  const std::optional<ReuseKey>& reuse = std::nullopt);

  // Leases the next pending job (of grid `grid_name`, or of any grid when empty)
  // to `owner` until now + lease_ms, creating its run. nullopt when none is pending.
  // With `capacity`, only a job whose requirement it can run (DeviceCapacity::can_run)
  // is leased; without, any job.
  Result<std::optional<Lease>> lease_next(const std::string& owner, int64_t lease_ms,
                                          const std::string& grid_name = "",
                                          const DeviceCapacity* capacity = nullptr);
  // The same for up to `max_jobs` (>= 1) jobs at once, in lease order, all in one
  // group-committed write (a worker with several free slots: one call and one
  // commit instead of one each). Empty when none is pending.
  Result<std::vector<Lease>> lease_jobs(const std::string& owner, int64_t lease_ms, int max_jobs,
                                        const std::string& grid_name = "",
                                        const DeviceCapacity* capacity = nullptr);
  // The lease holder marks the job running / extends its lease. Refused (error) when
  // the run is not the job's current lease of `owner`.
  Status mark_running(int64_t run_id, const std::string& owner, int64_t lease_ms);
  Status renew_lease(int64_t run_id, const std::string& owner, int64_t lease_ms);
  // Both in one transaction, for a worker's heartbeat: extends the lease to now +
  // lease_ms, marks the job running when `running`, and records `progress` (a
  // fraction, clamped to [0, 1]) and `message` on the run when progress is given.
  // Returns the new expiry and whether the job went leased -> running. Refused like
  // renew_lease.
  struct Heartbeat {
    int64_t expires_ms = 0;
    bool started = false;
  };
  Result<Heartbeat> heartbeat(int64_t run_id, const std::string& owner, int64_t lease_ms, bool running,
                              std::optional<double> progress, const std::string& message);
  // Records the results exactly once and marks the job succeeded. Refused when the
  // lease is stale or foreign (nothing is written then).
  // The lease writes (lease_next, mark_running, renew_lease, heartbeat, complete,
  // fail, release) are group-committed: writes from threads that call at the same
  // time share one transaction, each in its own savepoint (a refused one leaves no
  // trace and does not affect the others), and each returns after that transaction
  // committed.
  Status complete(int64_t run_id, const std::string& owner, const RunRecord& record);
  // Records several finished runs of `owner` as complete() would, in one
  // group-committed transaction: one that is refused (a stale or foreign lease, a bad
  // record) writes nothing and does not affect the others. One status per run, in
  // order, each returned only after the COMMIT; a write that fails once begun (I/O,
  // disk full) and a failed commit fail them all, and nothing of them is stored.
  std::vector<Status> complete_each(const std::string& owner,
                                    const std::vector<std::pair<int64_t, RunRecord>>& done);
  // Records a failed run. `outcome` is kFailed, kOom, kInvalid or kTimeout. kOom and
  // kInvalid are outcomes (the job ends oom or invalid at once: retrying would not
  // help); kFailed/kTimeout go back to pending while attempts remain, unless `retry`
  // is false, which ends the job now.
  Status fail(int64_t run_id, const std::string& owner, JobState outcome, const std::string& error,
              bool retry = true);
  // Batches for jobs computed in process (theory-only kinds take a fraction of a
  // millisecond, so one transaction per lease and per completion would dominate;
  // job_store_batches.cc). lease_batch leases up to `limit` pending jobs of grid
  // `grid_name` whose kind is one of `kinds`, in grid order, to `owner`, marked
  // running, in one transaction. complete_batch records them as complete() would,
  // all in one transaction: all or nothing, each refused unless held by `owner`.
  // `cursor` (optional) makes a run of batches one walk of the grid: each batch
  // starts past the grid position where the last one ended (where a fresh walk
  // from the start would step over every job done so far: quadratic in the grid),
  // and when nothing is pending past it, the walk starts over once from the top
  // (jobs that went back to pending); an empty result means none is left.
  struct BatchCursor {
    int64_t after_position = -1;
  };
  Result<std::vector<Lease>> lease_batch(const std::string& owner, int64_t lease_ms, const std::string& grid_name,
                                         const std::vector<std::string>& kinds, int limit,
                                         BatchCursor* cursor = nullptr);
  Status complete_batch(const std::string& owner, const std::vector<std::pair<int64_t, RunRecord>>& done);
  // lease_batch, `compute` on each job and complete_batch in one transaction, for a
  // process that is the only one computing its jobs (the embedded runner; not the
  // coordinator, whose store other writers wait on): a job that succeeds goes from
  // pending to succeeded with one run, written once, and no lease in between;
  // one that does not ends its run as fail() would (`ok` false: its outcome and
  // error). The batch's jobs with the state each ended in (pending: another attempt
  // is left); empty when none is left. `compute` runs under the store's write lock;
  // where the transaction fails, nothing of the batch is stored and the error is
  // returned (the jobs stay pending).
  struct InProcessOutcome {
    bool ok = false;
    RunRecord record;                      // ok
    JobState outcome = JobState::kFailed;  // !ok: failed, oom, invalid or timeout
    std::string error;                     // !ok
  };
  struct InProcessJob {
    Lease lease;
    bool ok = false;
    JobState job_state = JobState::kSucceeded;
    std::string error;
  };
  Result<std::vector<InProcessJob>> run_batch_in_process(
      const std::string& owner, const std::string& grid_name, const std::vector<std::string>& kinds, int limit,
      BatchCursor* cursor, const std::function<InProcessOutcome(const Lease&)>& compute);
  // Gives a lease back without spending an attempt (interrupted by the user).
  Status release(int64_t run_id, const std::string& owner);
  // Returns jobs whose lease expired before `now` to pending (or failed when their
  // attempts are spent). Returns how many changed.
  Result<int64_t> expire_leases(int64_t now);
  // Returns every job leased by `owner` to pending at once (its holder is known dead).
  Result<int64_t> reclaim_owner(const std::string& owner);
  // Owners that currently hold leases (for dead-process detection).
  Result<std::vector<std::string>> lease_owners();
  // Extends every lease that expires before `min_expires_ms` to it (a coordinator
  // restarting gives live workers time to renew). Returns how many changed.
  Result<int64_t> extend_leases(int64_t min_expires_ms);
  // A run and its job's lease state; nullopt when no such run exists.
  Result<std::optional<RunInfo>> run_info(int64_t run_id);
  // Cancels the grid's unfinished jobs that no other unfinished grid needs.
  Result<int64_t> cancel_grid(const std::string& name);

  Result<std::vector<GridSummary>> list_grids();
  Result<std::optional<GridSummary>> grid_summary(const std::string& name);
  // Without `parse_params`, StoredJob::params stays null (params_json is always set):
  // cheaper for callers that only look at states.
  Result<std::vector<StoredJob>> grid_jobs(const std::string& name, bool parse_params = true);
  // The grid file's content as JSON text in file order (Grid::spec.dump()), and its
  // source path, so that parse_grid can rebuild the Grid for reports.
  Result<std::pair<std::string, std::string>> grid_spec(const std::string& name);
  // Current results (metrics of each job's result run) of the grid's jobs.
  Result<std::vector<ResultRow>> grid_results(const std::string& name);
  // Those of the jobs at grid positions from `from_position` on, at most `max_jobs`
  // of them (0: all), with the position the next page starts at (0: none left), so
  // that a large grid's results go out in messages of bounded size and the store's
  // lock is held one page at a time. Each page is read in its own transaction.
  struct ResultsPage {
    std::vector<ResultRow> rows;
    int64_t next_from_position = 0;
  };
  Result<ResultsPage> grid_results_page(const std::string& name, int64_t from_position, int64_t max_jobs);
  // A series of a job's current result run.
  Result<std::vector<engine::Series>> job_series(int64_t job_id);
  // The series of the current result runs of every job of grid `name`, by job hash
  // (jobs without series absent), in one query: a page of 20,000 roofline jobs asked
  // job_series 20,000 times.
  Result<std::map<std::string, std::vector<engine::Series>>> grid_series(const std::string& name);

  // Pending jobs that `capacity` cannot run, per grid name (of grid `grid_name`
  // only when not empty); grids without such jobs are absent.
  Result<std::map<std::string, int64_t>> unplaceable(const DeviceCapacity& capacity,
                                                     const std::string& grid_name = "");
  // Jobs that run on another's output (job_store_dependencies.cc). dependency_waits:
  // the pending jobs of grid `grid_name` whose dependency has not succeeded, one
  // entry per job and dependency, in grid order (a dependency the store does not
  // hold is left out: the lease rule does not wait for it). end_stranded_dependents:
  // those whose dependency ended failed, oom, invalid, timeout or cancelled end
  // invalid now, as end_lease ends them when the dependency ends (a database from
  // before that rule, a dependency cancelled with another grid); returns them.
  Result<std::vector<DependencyWait>> dependency_waits(const std::string& grid_name);
  Result<std::vector<DependencyWait>> end_stranded_dependents(const std::string& grid_name);

  // Workers. register_worker inserts or replaces (by name) the worker's devices,
  // slots and engine version, marks it active and seen now, and returns its row
  // (the id is kept across registrations).
  Result<WorkerRecord> register_worker(const std::string& name, const Json& devices, int slots,
                                       const std::string& engine_version);
  Result<std::vector<WorkerRecord>> list_workers();
  // Sets the state and last_seen_ms of known workers (unknown names are ignored).
  Status update_workers(const std::vector<WorkerUpdate>& updates);
  // Leases held now, per owner.
  Result<std::map<std::string, int64_t>> lease_counts();

  // Moves WAL checkpoints off the write path, for the coordinator daemon: a
  // thread with its own connection checkpoints (PASSIVE: never blocks a writer)
  // every `interval_ms`, and this connection's automatic checkpoints, which a
  // commit would otherwise run while holding the store, are turned off. Stops
  // when the store is destroyed.
  Status start_background_checkpoints(int interval_ms = 50);

 private:
  JobStore(sqlite3* db, std::string path);
  void checkpoint_loop(sqlite3* conn, int interval_ms);
  std::thread checkpointer_;
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_stop_ = false;
  sqlite3* db_;
  std::unique_ptr<sqlite::StmtCache> stmts_;  // prepared statements of db_, used under mu_
  std::string path_;
  int schema_version_ = 0;
  // One connection, used by one thread at a time: every public method holds it, so
  // a JobStore may be shared by the threads of a daemon. Other processes (and other
  // JobStore handles) are serialized by SQLite's own locking (BEGIN IMMEDIATE).
  // Statements are prepared once (stmts_) and reused.
  mutable std::mutex mu_;

  // Group commit of the lease writes (lease_next, mark_running, renew_lease,
  // heartbeat, complete, fail, release): see grouped() in job_store.cc.
  struct GroupOp;
  Status grouped(const std::function<Status()>& body);
  // complete()'s write for a run held by `owner`, in the open transaction. A run
  // that is not held is refused before anything is written (*wrote_nothing true).
  Status complete_held(int64_t run_id, const std::string& owner, const RunRecord& record, int64_t now,
                       bool* wrote_nothing = nullptr);
  // fail()'s write for a run held by `owner`, in the open transaction; the job's
  // state after it in *job_state (pending where it goes back for another attempt).
  Status fail_held(int64_t run_id, const std::string& owner, JobState outcome, const std::string& error, bool retry,
                   int64_t now, JobState* job_state = nullptr);
  void run_batch(const std::vector<GroupOp*>& batch);  // under mu_
  std::mutex group_mu_;
  std::vector<GroupOp*> group_queue_;  // waiting writes, oldest first
  bool group_leader_ = false;          // a thread is writing a batch or about to
};

}  // namespace gb::coord

// Private to the JobStore sources (job_store*.cc; include it nowhere else): the
// helpers that more than one of them uses, in gb::coord::store_internal. The
// functions are defined in job_store.cc, the two constants here. Helpers that one
// file uses alone stay in that file's anonymous namespace. Not the store's
// interface: that is job_store.h.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "coordinator/store/job_store.h"
#include "coordinator/store/sqlite_util.h"

struct sqlite3;

namespace gb::coord::store_internal {

// The names of JobState, in enum order (the values of jobs.state).
inline constexpr std::array<std::string_view, 9> kStateNames = {
    "pending", "leased", "running", "succeeded", "failed", "oom", "invalid", "timeout", "cancelled"};

// Canonical JSON text for a column (invalid UTF-8 replaced).
std::string dump_json(const Json& j);

// A JSON column's value; an empty text reads as {}. Error names `what`.
Result<Json> parse_json_column(const std::string& text, const std::string& what);

// A state column's value; Error (naming `what`) for an unknown state.
Result<JobState> parse_state_column(const std::string& s, const std::string& what);

// The id of the grid named `name`; Error (naming the database `path`) when none.
Result<int64_t> grid_id_of(sqlite::StmtCache& db, const std::string& name, const std::string& path);

// Prepares (or takes from the cache) `sql`, binds it with `bind` and runs it.
Status exec_bound(sqlite3* db, const char* sql, const std::function<void(sqlite::Stmt&)>& bind);
Status exec_bound(sqlite::StmtCache& db, const char* sql, const std::function<void(sqlite::Stmt&)>& bind);

// Writes a finished run's metrics (results_data) and series (series_data).
Status write_run_outputs(sqlite::StmtCache& db, int64_t run_id, const RunRecord& record);

// Ends the run `run_id` in `run_state` with `run_error` and clears the lease of its
// job, which goes to `job_state` (pending or terminal) with `job_error`; when
// `give_back_attempt`, the run does not count as an attempt.
Status end_lease(sqlite::StmtCache& db, int64_t job_id, int64_t run_id, std::string_view run_state,
                 JobState job_state, const std::string& run_error, const std::string& job_error,
                 int64_t now, bool give_back_attempt);

// Binds a capacity as three parameters from `first` on: the largest memory for
// "any", "cpu" and "cuda" jobs (-1: none of that kind). Used with fits_capacity_sql.
void bind_capacity(sqlite::Stmt& st, int first, const DeviceCapacity& c);

// SQL: job j fits the capacity bound at ?first, ?first+1, ?first+2.
std::string fits_capacity_sql(int first);

// The columns read_worker reads, in its order.
inline constexpr const char* kWorkerColumns =
    "id, name, device_json, slots, engine_version, state, registered_ms, last_seen_ms";

// A worker from a row of kWorkerColumns.
Result<WorkerRecord> read_worker(const sqlite::Stmt& st);

// The series of run `run_id` in the order they were stored (series_data,
// codecs/series_points.h); Error naming the database `path` for a damaged points text.
Result<std::vector<engine::Series>> run_series(sqlite::StmtCache& db, int64_t run_id, const std::string& path);
// One series_data row of run `run_id` whose name, x_unit, y_unit and points are
// columns `first` to `first + 3` of `st`.
Result<engine::Series> read_series(const sqlite::Stmt& st, int first, int64_t run_id, const std::string& path);

// A lease from a picked job row (columns: id, hash, kind, params_json, repeat,
// attempts), expiring at `expires_ms`; its attempt is the stored count plus one.
// Its params are left as the stored text (Lease::params_json): the write lock is
// held while rows are read, so parse_lease_params parses them after it.
Lease read_lease(const sqlite::Stmt& st, int64_t expires_ms);

// Parses each lease's params_json into params (outside the write lock).
Status parse_lease_params(std::vector<Lease>& leases);

// Writes the picked jobs' leases: a run each (its id into Lease::run_id) and the job
// in `state` ("leased", or "running" for jobs computed in process), held by `owner`.
Status write_leases(sqlite::StmtCache& db, std::vector<Lease>& leases, const std::string& owner, int64_t now,
                    const char* state);

// Jobs that name another job's output ("job:HASH" parameter values;
// job_store_dependencies.cc). SQL: every job picked job j names has succeeded.
std::string deps_ready_sql();
// When job `job_id` ends in `state` failed, oom, invalid or timeout: its pending
// dependents end invalid, their error naming it, its state and `error`.
Status invalidate_dependents(sqlite::StmtCache& db, int64_t job_id, JobState state, const std::string& error,
                             int64_t now);
// Replaces each "job:HASH" value of a lease's parameters by what that job hands
// over (a kv_calibrate job: its calibration's JSON text); a value naming no
// succeeded job that hands something over stays as it is.
Status resolve_job_refs(sqlite::StmtCache& db, Lease& lease);

}  // namespace gb::coord::store_internal

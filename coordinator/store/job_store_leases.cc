// JobStore (job_store.h), part 3 of 5: leases. The group commit of the lease
// writes (GroupOp, grouped, run_batch), the writes themselves (lease_next,
// mark_running, renew_lease, heartbeat, complete, fail, release), the lease
// maintenance of the daemon (expire_leases, reclaim_owner, extend_leases) and the
// lease lookups (run_info, lease_owners). Not here: grid submission and the worker
// registry (job_store.cc), the schema and the connection (job_store_schema.cc), the
// read queries, lease_counts included (job_store_queries.cc).
#include "coordinator/store/job_store.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include <sqlite3.h>

#include "coordinator/store/job_store_internal.h"
#include "coordinator/store/codecs/run_metrics.h"
#include "coordinator/store/codecs/series_points.h"
#include "coordinator/store/sqlite_util.h"

namespace gb::coord {

using namespace store_internal;

namespace {

using sqlite::Stmt;
using sqlite::Transaction;

std::string str(JobState s) { return std::string(state_name(s)); }

// The job a run belongs to, when that run is the job's current lease held by `owner`.
struct HeldLease {
  int64_t job_id = 0;
  std::string hash;
  JobState state = JobState::kPending;
  int attempts = 0;
  int max_attempts = 0;
};

Result<HeldLease> check_lease(sqlite::StmtCache& db, int64_t run_id, const std::string& owner) {
  auto st = db.get("SELECT j.id, j.hash, j.state, j.lease_owner, j.lease_run_id, j.attempts, "
                   "j.max_attempts FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?1");
  if (!st.ok()) return st.error();
  st->bind(1, run_id);
  auto row = st->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error{"run " + std::to_string(run_id) + " does not exist"};
  HeldLease h;
  h.job_id = st->int64(0);
  h.hash = st->text(1);
  auto state = parse_state_column(st->text(2), "job " + h.hash);
  if (!state.ok()) return state.error();
  h.state = *state;
  std::string lease_owner = st->is_null(3) ? "" : st->text(3);
  int64_t lease_run = st->is_null(4) ? 0 : st->int64(4);
  h.attempts = static_cast<int>(st->int64(5));
  h.max_attempts = static_cast<int>(st->int64(6));
  bool held = (h.state == JobState::kLeased || h.state == JobState::kRunning) &&
              lease_run == run_id && lease_owner == owner;
  if (!held) {
    return Error{"run " + std::to_string(run_id) + " of job " + h.hash + " is not leased by " + owner +
                 " (state " + str(h.state) + ", owner " + (lease_owner.empty() ? "none" : lease_owner) +
                 ", current run " + (lease_run == 0 ? "none" : std::to_string(lease_run)) + ")"};
  }
  return h;
}

// Returns the leases chosen by `select_sql` (columns: job id, run id, owner, attempts,
// max_attempts; parameter ?1 bound by `bind`) to pending, or to failed when their
// attempts are spent. Runs end as 'expired'.
Result<int64_t> return_leases(sqlite::StmtCache& db, const char* select_sql, const std::function<void(Stmt&)>& bind,
                              const std::string& why, int64_t now) {
  struct Row {
    int64_t job_id, run_id;
    std::string owner;
    int64_t attempts, max_attempts;
  };
  std::vector<Row> rows;
  {
    auto st = db.get(select_sql);
    if (!st.ok()) return st.error();
    bind(*st);
    while (true) {
      auto row = st->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      rows.push_back({st->int64(0), st->int64(1), st->text(2), st->int64(3), st->int64(4)});
    }
  }
  for (const Row& r : rows) {
    std::string run_error = why + " (owner " + r.owner + ")";
    bool spent = r.attempts >= r.max_attempts;
    std::string job_error =
        spent ? why + " after " + std::to_string(r.attempts) + " attempts (last owner " + r.owner + ")"
              : run_error;
    GB_RETURN_IF_ERROR(end_lease(db, r.job_id, r.run_id, "expired",
                                 spent ? JobState::kFailed : JobState::kPending, run_error, job_error,
                                 now, /*give_back_attempt=*/false));
  }
  return static_cast<int64_t>(rows.size());
}

}  // namespace

Status store_internal::write_run_outputs(sqlite::StmtCache& db, int64_t run_id, const RunRecord& record) {
  if (!record.metrics.empty()) {
    auto metrics = db.get("INSERT INTO results_data(run_id, metrics) VALUES(?1, ?2)");
    if (!metrics.ok()) return metrics.status();
    metrics->bind(1, run_id).bind(2, encode_run_metrics(record.metrics));
    GB_RETURN_IF_ERROR(metrics->run());
  }
  if (!record.series.empty()) {
    auto series = db.get("INSERT INTO series_data(run_id, name, x_unit, y_unit, points) "
                         "VALUES(?1, ?2, ?3, ?4, ?5)");
    if (!series.ok()) return series.status();
    for (const auto& s : record.series) {
      GB_RETURN_IF_ERROR(series->reset());
      series->bind(1, run_id).bind(2, s.name).bind(3, s.x_unit).bind(4, s.y_unit);
      series->bind(5, encode_series_points(s.points));
      GB_RETURN_IF_ERROR(series->run());
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------
// Leases

// Group commit. A write that arrives while another batch is being written waits in
// group_queue_; the next batch takes every waiting write and runs each in its own
// SAVEPOINT of one BEGIN IMMEDIATE transaction, so that a refused or failed write
// leaves no trace and does not affect the others, then commits once. Each caller
// gets its own result only after the COMMIT that made its write durable (or the
// error that prevented it). The thread whose write is first in the queue writes the
// batch (no extra thread, no hand-over when nothing else is waiting).
struct JobStore::GroupOp {
  const std::function<Status()>* body = nullptr;
  Status status;
  int state = 0;  // 0: waiting, 1: done (status set), 2: write the next batch
  std::condition_variable cv;
};

Status JobStore::grouped(const std::function<Status()>& body) {
  GroupOp op;
  op.body = &body;
  {
    std::unique_lock q(group_mu_);
    group_queue_.push_back(&op);
    if (group_leader_) {
      op.cv.wait(q, [&] { return op.state != 0; });
      if (op.state == 1) return std::move(op.status);
    } else {
      group_leader_ = true;
    }
  }
  // This thread writes the next batch, which holds its own write.
  std::vector<GroupOp*> batch;
  {
    std::lock_guard q(group_mu_);
    batch.swap(group_queue_);
  }
  {
    std::lock_guard lock(mu_);
    run_batch(batch);
  }
  std::lock_guard q(group_mu_);
  for (GroupOp* o : batch) {
    if (o == &op) continue;
    o->state = 1;
    o->cv.notify_one();  // under group_mu_: the waiter cannot return (and free o) before
  }
  if (!group_queue_.empty()) {
    GroupOp* next = group_queue_.front();
    next->state = 2;
    next->cv.notify_one();
  } else {
    group_leader_ = false;
  }
  return std::move(op.status);
}

void JobStore::run_batch(const std::vector<GroupOp*>& batch) {
  std::vector<GroupOp*> written;  // in the open transaction, not committed yet
  std::optional<Transaction> txn;
  auto fail_written = [&](const std::string& why) {
    for (GroupOp* w : written) w->status = Error{why};
    written.clear();
  };
  auto savepoint = [&](const char* sql) -> Status {
    auto st = stmts_->get(sql);
    if (!st.ok()) return st.status();
    return st->run();
  };
  std::optional<Status> no_txn;  // BEGIN failed (e.g. busy): the rest of the batch fails alike
  for (GroupOp* o : batch) {
    if (no_txn) {
      o->status = *no_txn;
      continue;
    }
    if (!txn) {
      auto t = Transaction::begin(db_, Transaction::Mode::kWrite);
      if (!t.ok()) {
        no_txn = t.status();
        o->status = *no_txn;
        continue;
      }
      txn.emplace(std::move(*t));
    }
    if (Status sp = savepoint("SAVEPOINT gb_write"); !sp.ok()) {
      o->status = sp;
      continue;
    }
    Status st;
    try {
      st = (*o->body)();
    } catch (const std::exception& e) {
      st = Error{std::string("unexpected exception: ") + e.what()};
    }
    if (st.ok()) st = savepoint("RELEASE gb_write");
    o->status = st;
    if (st.ok()) {
      written.push_back(o);
      continue;
    }
    if (sqlite3_get_autocommit(db_) != 0) {
      // SQLite rolled the whole transaction back (I/O error, disk full, ...): the
      // writes before this one are lost too. The next write starts a new one.
      fail_written("sqlite rolled back the transaction: " + st.message());
      txn.reset();
      continue;
    }
    Status undo = savepoint("ROLLBACK TO gb_write");
    if (undo.ok()) undo = savepoint("RELEASE gb_write");
    if (!undo.ok()) {
      // Cannot undo this write alone: give up the whole transaction.
      fail_written("cannot roll back a refused write: " + undo.message());
      txn.reset();  // rolls back
    }
  }
  if (txn) {
    Status c = txn->commit();
    if (!c.ok()) {
      fail_written(c.message());
      txn.reset();  // rolls back
    }
  }
}

Result<std::optional<Lease>> JobStore::lease_next(const std::string& owner, int64_t lease_ms,
                                                  const std::string& grid_name,
                                                  const DeviceCapacity* capacity) {
  Result<std::vector<Lease>> leases = lease_jobs(owner, lease_ms, 1, grid_name, capacity);
  if (!leases.ok()) return leases.error();
  if (leases->empty()) return std::optional<Lease>();
  return std::optional<Lease>(std::move(leases->front()));
}

Result<std::vector<Lease>> JobStore::lease_jobs(const std::string& owner, int64_t lease_ms, int max_jobs,
                                                const std::string& grid_name, const DeviceCapacity* capacity) {
  if (owner.empty()) return Error{"lease_next: the lease owner must not be empty"};
  if (lease_ms <= 0) return Error{"lease_next: lease_ms must be > 0, got " + std::to_string(lease_ms)};
  if (max_jobs < 1) return Error{"lease_jobs: max_jobs must be >= 1, got " + std::to_string(max_jobs)};
  // Oldest grid first, then grid order. Jobs that no grid links any more are not
  // handed out.
  // With a capacity, only jobs it can run. Of any grid: in queue_key order (an index
  // walk of jobs_queue, no sort); of one grid: in that grid's order.
  // And only jobs whose dependencies have succeeded (deps_ready_sql).
  static const std::string kPickAny =
      "SELECT j.id, j.hash, j.kind, j.params_json, j.repeat, j.attempts FROM jobs j "
      "WHERE j.state = 'pending' AND j.queue_key IS NOT NULL AND ?1 = 0 AND " + deps_ready_sql() +
      " AND EXISTS (SELECT 1 FROM grid_jobs gj WHERE gj.job_id = j.id) "
      "ORDER BY j.queue_key LIMIT ?5";
  static const std::string kPickAnyFits =
      "SELECT j.id, j.hash, j.kind, j.params_json, j.repeat, j.attempts FROM jobs j "
      "WHERE j.state = 'pending' AND j.queue_key IS NOT NULL AND ?1 = 0 AND " + deps_ready_sql() + " AND " +
      fits_capacity_sql(2) +
      " AND EXISTS (SELECT 1 FROM grid_jobs gj WHERE gj.job_id = j.id) "
      "ORDER BY j.queue_key LIMIT ?5";
  static const std::string kPickGrid =
      "SELECT j.id, j.hash, j.kind, j.params_json, j.repeat, j.attempts "
      "FROM jobs j JOIN grid_jobs gj ON gj.job_id = j.id "
      "WHERE j.state = 'pending' AND gj.grid_id = ?1 AND " + deps_ready_sql() + " ORDER BY gj.position LIMIT ?5";
  static const std::string kPickGridFits =
      "SELECT j.id, j.hash, j.kind, j.params_json, j.repeat, j.attempts "
      "FROM jobs j JOIN grid_jobs gj ON gj.job_id = j.id "
      "WHERE j.state = 'pending' AND gj.grid_id = ?1 AND " + deps_ready_sql() + " AND " +
      fits_capacity_sql(2) + " ORDER BY gj.position LIMIT ?5";

  std::vector<Lease> out;
  const std::function<Status()> body = [&]() -> Status {
    out.clear();  // a batch that failed and is written again starts over
    const int64_t now = now_ms();
    int64_t grid_id = 0;
    if (!grid_name.empty()) {
      auto gid = grid_id_of(*stmts_, grid_name, path_);
      if (!gid.ok()) return gid.status();
      grid_id = *gid;
    }
    const std::string& sql = grid_id == 0 ? (capacity != nullptr ? kPickAnyFits : kPickAny)
                                          : (capacity != nullptr ? kPickGridFits : kPickGrid);
    // One walk of the queue picks them all (?5: how many), then each is leased.
    {
      auto pick = stmts_->get(sql);
      if (!pick.ok()) return pick.status();
      pick->bind(1, grid_id);
      if (capacity != nullptr) bind_capacity(*pick, 2, *capacity);
      pick->bind(5, static_cast<int64_t>(max_jobs));
      while (true) {
        auto row = pick->step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        out.push_back(read_lease(*pick, now + lease_ms));
      }
      GB_RETURN_IF_ERROR(pick->reset());
    }
    // A job that names another job's output gets it now (resolve_job_refs reads the
    // store): its params are parsed here, the others' after the write lock.
    for (Lease& lease : out) {
      if (lease.params_json.find("\"job:") == std::string::npos) continue;
      auto params = parse_json_column(lease.params_json, "params_json of job " + lease.hash);
      if (!params.ok()) return params.status();
      lease.params = std::move(*params);
      GB_RETURN_IF_ERROR(resolve_job_refs(*stmts_, lease));
    }
    return write_leases(*stmts_, out, owner, now, "leased");
  };
  GB_RETURN_IF_ERROR(grouped(body));
  GB_RETURN_IF_ERROR(parse_lease_params(out));
  return out;
}

Status JobStore::mark_running(int64_t run_id, const std::string& owner, int64_t lease_ms) {
  if (lease_ms <= 0) return Error{"mark_running: lease_ms must be > 0, got " + std::to_string(lease_ms)};
  return grouped([&]() -> Status {
    const int64_t now = now_ms();
    auto held = check_lease(*stmts_, run_id, owner);
    if (!held.ok()) return held.status();
    GB_RETURN_IF_ERROR(exec_bound(*stmts_, "UPDATE jobs SET state = 'running', lease_expires_ms = ?2 WHERE id = ?1",
                                  [&](Stmt& s) { s.bind(1, held->job_id).bind(2, now + lease_ms); }));
    return exec_bound(*stmts_, "UPDATE runs SET state = 'running' WHERE id = ?1",
                      [&](Stmt& s) { s.bind(1, run_id); });
  });
}

Status JobStore::renew_lease(int64_t run_id, const std::string& owner, int64_t lease_ms) {
  if (lease_ms <= 0) return Error{"renew_lease: lease_ms must be > 0, got " + std::to_string(lease_ms)};
  return grouped([&]() -> Status {
    const int64_t now = now_ms();
    auto held = check_lease(*stmts_, run_id, owner);
    if (!held.ok()) return held.status();
    return exec_bound(*stmts_, "UPDATE jobs SET lease_expires_ms = ?2 WHERE id = ?1",
                      [&](Stmt& s) { s.bind(1, held->job_id).bind(2, now + lease_ms); });
  });
}

Result<JobStore::Heartbeat> JobStore::heartbeat(int64_t run_id, const std::string& owner, int64_t lease_ms, bool running,
                                    std::optional<double> progress, const std::string& message) {
  if (lease_ms <= 0) return Error{"heartbeat: lease_ms must be > 0, got " + std::to_string(lease_ms)};
  Heartbeat out;
  GB_RETURN_IF_ERROR(grouped([&]() -> Status {
    const int64_t now = now_ms();
    auto held = check_lease(*stmts_, run_id, owner);
    if (!held.ok()) return held.status();
    const int64_t expires = now + lease_ms;
    GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                  "UPDATE jobs SET lease_expires_ms = ?2, "
                                  "state = CASE WHEN ?3 THEN 'running' ELSE state END WHERE id = ?1",
                                  [&](Stmt& s) { s.bind(1, held->job_id).bind(2, expires).bind(3, running ? 1 : 0); }));
    if (running || progress) {
      double p = progress ? *progress : 0.0;
      p = std::isnan(p) ? 0.0 : std::clamp(p, 0.0, 1.0);
      GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                    "UPDATE runs SET state = CASE WHEN ?2 THEN 'running' ELSE state END, "
                                    "progress = CASE WHEN ?3 THEN ?4 ELSE progress END, "
                                    "progress_message = CASE WHEN ?3 THEN ?5 ELSE progress_message END "
                                    "WHERE id = ?1",
                                    [&](Stmt& s) {
                                      s.bind(1, run_id).bind(2, running ? 1 : 0).bind(3, progress ? 1 : 0);
                                      s.bind(4, p).bind(5, message);
                                    }));
    }
    out = Heartbeat{expires, running && held->state == JobState::kLeased};
    return Status::Ok();
  }));
  return out;
}

// The checks of a run's record that need no database: metric and series names.
static Status check_record(int64_t run_id, const RunRecord& record) {
  std::set<std::string> names;
  for (const auto& m : record.metrics) {
    if (m.name.empty()) return Error{"run " + std::to_string(run_id) + ": a metric has no name"};
    if (!names.insert(m.name).second) {
      return Error{"run " + std::to_string(run_id) + ": metric '" + m.name + "' reported twice"};
    }
  }
  names.clear();
  for (const auto& s : record.series) {
    if (!names.insert(s.name).second) {
      return Error{"run " + std::to_string(run_id) + ": series '" + s.name + "' reported twice"};
    }
  }
  return Status::Ok();
}

Status JobStore::complete(int64_t run_id, const std::string& owner, const RunRecord& record) {
  GB_RETURN_IF_ERROR(check_record(run_id, record));
  return grouped([&]() -> Status { return complete_held(run_id, owner, record, now_ms()); });
}

std::vector<Status> JobStore::complete_each(const std::string& owner,
                                            const std::vector<std::pair<int64_t, RunRecord>>& done) {
  std::vector<Status> out(done.size());
  std::vector<bool> checked(done.size());
  for (size_t i = 0; i < done.size(); ++i) {
    out[i] = check_record(done[i].first, done[i].second);
    checked[i] = out[i].ok();
  }
  // No savepoint per run: check_record refused what the table constraints would,
  // and complete_held refuses a run it does not hold before writing anything, so
  // a run fails on its own only where it wrote nothing. Any other failure is the
  // database's, and grouped()'s savepoint takes back the whole call.
  Status all = grouped([&]() -> Status {
    const int64_t now = now_ms();
    for (size_t i = 0; i < done.size(); ++i) {
      if (!checked[i]) continue;
      bool wrote_nothing = false;
      Status st = complete_held(done[i].first, owner, done[i].second, now, &wrote_nothing);
      if (!st.ok() && !wrote_nothing) return st;
      out[i] = std::move(st);
    }
    return Status::Ok();
  });
  if (!all.ok()) {
    for (size_t i = 0; i < done.size(); ++i) {
      if (checked[i]) out[i] = all;
    }
  }
  return out;
}

// complete()'s write, inside the caller's transaction.
Status JobStore::complete_held(int64_t run_id, const std::string& owner, const RunRecord& record, int64_t now,
                               bool* wrote_nothing) {
  if (wrote_nothing != nullptr) *wrote_nothing = false;
  const std::string device_json = dump_json(record.device);
  // The lease check and the job's update in one statement: it changes the job only
  // when `run_id` is its current lease held by `owner`.
  {
    auto job = stmts_->get("UPDATE jobs SET state = 'succeeded', result_run_id = ?1, lease_owner = NULL, "
                           "lease_expires_ms = NULL, lease_run_id = NULL, error = '', finished_ms = ?3 "
                           "WHERE id = (SELECT job_id FROM runs WHERE id = ?1) AND lease_run_id = ?1 "
                           "AND lease_owner = ?2 AND state IN ('leased', 'running')");
    if (!job.ok()) return job.status();
    job->bind(1, run_id).bind(2, owner).bind(3, now);
    GB_RETURN_IF_ERROR(job->run());
    if (job->changes() != 1) {
      // Not held: check_lease says why (nothing was written).
      if (wrote_nothing != nullptr) *wrote_nothing = true;
      auto held = check_lease(*stmts_, run_id, owner);
      if (!held.ok()) return held.status();
      return Error{"run " + std::to_string(run_id) + ": the job's lease changed while completing it"};
    }
  }
  GB_RETURN_IF_ERROR(write_run_outputs(*stmts_, run_id, record));
  return exec_bound(*stmts_,
                    "UPDATE runs SET state = 'succeeded', finished_ms = ?2, wall_ms = ?3, "
                    "device_json = ?4, engine_version = ?5, error = '' WHERE id = ?1",
                    [&](Stmt& s) {
                      s.bind(1, run_id).bind(2, now).bind(3, record.wall_ms);
                      s.bind(4, device_json).bind(5, record.engine_version);
                    });
}

Status JobStore::fail(int64_t run_id, const std::string& owner, JobState outcome, const std::string& error,
                      bool retry) {
  if (outcome != JobState::kFailed && outcome != JobState::kOom && outcome != JobState::kInvalid &&
      outcome != JobState::kTimeout) {
    return Error{"fail: outcome must be failed, oom, invalid or timeout, got " + str(outcome)};
  }
  return grouped([&]() -> Status { return fail_held(run_id, owner, outcome, error, retry, now_ms()); });
}

Status JobStore::fail_held(int64_t run_id, const std::string& owner, JobState outcome, const std::string& error,
                           bool retry, int64_t now, JobState* job_state) {
  auto held = check_lease(*stmts_, run_id, owner);
  if (!held.ok()) return held.status();
  JobState next = outcome;
  const bool outcome_final = outcome == JobState::kOom || outcome == JobState::kInvalid;
  if (retry && !outcome_final && held->attempts < held->max_attempts) next = JobState::kPending;
  if (job_state != nullptr) *job_state = next;
  return end_lease(*stmts_, held->job_id, run_id, state_name(outcome), next, error, error, now,
                   /*give_back_attempt=*/false);
}

Status JobStore::release(int64_t run_id, const std::string& owner) {
  return grouped([&]() -> Status {
    const int64_t now = now_ms();
    auto held = check_lease(*stmts_, run_id, owner);
    if (!held.ok()) return held.status();
    // The job's error stays what it was: a release is not a failure.
    std::string job_error;
    {
      auto error = stmts_->get("SELECT error FROM jobs WHERE id = ?1");
      if (!error.ok()) return error.status();
      error->bind(1, held->job_id);
      auto row = error->step();
      if (!row.ok()) return row.status();
      job_error = *row ? error->text(0) : "";
    }
    return end_lease(*stmts_, held->job_id, run_id, "released", JobState::kPending, "released by " + owner,
                     job_error, now, /*give_back_attempt=*/true);
  });
}

Result<int64_t> JobStore::expire_leases(int64_t now) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  auto n = return_leases(*stmts_,
                         "SELECT id, lease_run_id, lease_owner, attempts, max_attempts FROM jobs INDEXED BY jobs_lease_expiry "
                         "WHERE state IN ('leased', 'running') AND lease_expires_ms < ?1 ORDER BY id",
                         [&](Stmt& s) { s.bind(1, now); }, "lease expired", now);
  if (!n.ok()) return n.error();
  GB_RETURN_IF_ERROR(txn->commit());
  return *n;
}

Result<int64_t> JobStore::reclaim_owner(const std::string& owner) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  auto n = return_leases(*stmts_,
                         "SELECT id, lease_run_id, lease_owner, attempts, max_attempts FROM jobs INDEXED BY jobs_lease_expiry "
                         "WHERE state IN ('leased', 'running') AND lease_owner = ?1 ORDER BY id",
                         [&](Stmt& s) { s.bind(1, owner); }, "lease holder lost", now_ms());
  if (!n.ok()) return n.error();
  GB_RETURN_IF_ERROR(txn->commit());
  return *n;
}

Result<int64_t> JobStore::extend_leases(int64_t min_expires_ms) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  auto st = stmts_->get("UPDATE jobs INDEXED BY jobs_lease_expiry SET lease_expires_ms = ?1 "
                        "WHERE state IN ('leased', 'running') AND lease_expires_ms < ?1");
  if (!st.ok()) return st.error();
  st->bind(1, min_expires_ms);
  GB_RETURN_IF_ERROR(st->run());
  const int64_t n = st->changes();
  GB_RETURN_IF_ERROR(txn->commit());
  return n;
}

Result<std::optional<RunInfo>> JobStore::run_info(int64_t run_id) {
  std::lock_guard lock(mu_);
  auto st = stmts_->get("SELECT r.id, r.job_id, j.hash, r.attempt, r.owner, r.state, j.state, "
                        "IFNULL(j.lease_run_id, 0), IFNULL(j.lease_owner, '') "
                        "FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?1");
  if (!st.ok()) return st.error();
  st->bind(1, run_id);
  auto row = st->step();
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<RunInfo>();
  RunInfo info;
  info.run_id = st->int64(0);
  info.job_id = st->int64(1);
  info.hash = st->text(2);
  info.attempt = static_cast<int>(st->int64(3));
  info.owner = st->text(4);
  info.state = st->text(5);
  auto state = parse_state_column(st->text(6), "job " + info.hash);
  if (!state.ok()) return state.error();
  info.job_state = *state;
  info.job_lease_run_id = st->int64(7);
  info.job_lease_owner = st->text(8);
  return std::optional<RunInfo>(std::move(info));
}

Result<std::vector<std::string>> JobStore::lease_owners() {
  std::lock_guard lock(mu_);
  auto st = stmts_->get("SELECT DISTINCT lease_owner FROM jobs WHERE state IN ('leased', 'running') "
                        "ORDER BY lease_owner");
  if (!st.ok()) return st.error();
  std::vector<std::string> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(st->text(0));
  }
  return out;
}

}  // namespace gb::coord

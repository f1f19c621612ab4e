// JobStore (job_store.h), part 1 of 5: job state names, now_ms, DeviceCapacity,
// the writes that are not leases (submit_grid, cancel_grid, and the worker registry:
// register_worker, update_workers), and the definitions of the shared helpers of
// job_store_internal.h. Not here: the schema, opening and closing the database and
// background checkpoints (job_store_schema.cc), leases and their group commit
// (job_store_leases.cc), the read queries (job_store_queries.cc).
#include "coordinator/store/job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <set>
#include <utility>

#include "common/json_parse.h"
#include "coordinator/store/job_store_internal.h"
#include "coordinator/store/codecs/series_points.h"
#include "coordinator/store/sqlite_util.h"

namespace gb::coord {

namespace {

using sqlite::Stmt;
using sqlite::Transaction;

}  // namespace

// ---------------------------------------------------------------------------------
// Helpers shared by the job_store*.cc files (declared in job_store_internal.h)

namespace store_internal {

std::string dump_json(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Result<Json> parse_json_column(const std::string& text, const std::string& what) {
  if (text.empty()) return Json::object();
  JsonLimits limits;
  limits.max_bytes = 256 * kMiB;  // written by the store itself; the limits only guard against a corrupt file
  Result<Json> j = parse_json(text, what, limits);
  if (!j) return Error{what + " is not valid JSON: " + j.message()};
  return j;
}

Result<JobState> parse_state_column(const std::string& s, const std::string& what) {
  auto st = parse_state(s);
  if (!st) return Error{what + ": unknown state '" + s + "'"};
  return *st;
}

Result<int64_t> grid_id_of(sqlite::StmtCache& db, const std::string& name, const std::string& path) {
  auto st = db.get("SELECT id FROM grids WHERE name = ?1");
  if (!st.ok()) return st.error();
  st->bind(1, name);
  auto row = st->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error{"no grid named '" + name + "' in " + path};
  return st->int64(0);
}

Status exec_bound(sqlite3* db, const char* sql, const std::function<void(Stmt&)>& bind) {
  auto st = Stmt::prepare(db, sql);
  if (!st.ok()) return st.status();
  bind(*st);
  return st->run();
}

Status exec_bound(sqlite::StmtCache& db, const char* sql, const std::function<void(Stmt&)>& bind) {
  auto st = db.get(sql);
  if (!st.ok()) return st.status();
  bind(*st);
  return st->run();
}

Status end_lease(sqlite::StmtCache& db, int64_t job_id, int64_t run_id, std::string_view run_state,
                 JobState job_state, const std::string& run_error, const std::string& job_error,
                 int64_t now, bool give_back_attempt) {
  GB_RETURN_IF_ERROR(exec_bound(
      db, "UPDATE runs SET state = ?2, finished_ms = ?3, error = ?4 WHERE id = ?1", [&](Stmt& s) {
        s.bind(1, run_id).bind(2, run_state).bind(3, now).bind(4, run_error);
      }));
  GB_RETURN_IF_ERROR(exec_bound(db,
                                "UPDATE jobs SET state = ?2, lease_owner = NULL, lease_expires_ms = NULL, "
                                "lease_run_id = NULL, error = ?3, "
                                "finished_ms = CASE WHEN ?2 = 'pending' THEN NULL ELSE ?4 END, "
                                "attempts = CASE WHEN ?5 THEN MAX(attempts - 1, 0) ELSE attempts END "
                                "WHERE id = ?1",
                                [&](Stmt& s) {
                                  s.bind(1, job_id).bind(2, state_name(job_state)).bind(3, job_error).bind(4, now);
                                  s.bind(5, give_back_attempt ? 1 : 0);
                                }));
  return invalidate_dependents(db, job_id, job_state, job_error, now);
}

void bind_capacity(Stmt& st, int first, const DeviceCapacity& c) {
  st.bind(first, c.any).bind(first + 1, c.cpu).bind(first + 2, c.cuda);
}

std::string fits_capacity_sql(int first) {
  auto p = [&](int k) { return "?" + std::to_string(first + k); };
  return "((j.req_device = 'any' AND j.req_memory_bytes <= " + p(0) + ") OR (j.req_device = 'cpu' AND " +
         "j.req_memory_bytes <= " + p(1) + ") OR (j.req_device = 'cuda' AND j.req_memory_bytes <= " + p(2) +
         "))";
}

Lease read_lease(const Stmt& st, int64_t expires_ms) {
  Lease lease;
  lease.job_id = st.int64(0);
  lease.hash = st.text(1);
  lease.kind = st.text(2);
  lease.params_json = st.text(3);
  lease.repeat = static_cast<int>(st.int64(4));
  lease.attempt = static_cast<int>(st.int64(5)) + 1;
  lease.expires_ms = expires_ms;
  return lease;
}

Status write_leases(sqlite::StmtCache& db, std::vector<Lease>& leases, const std::string& owner, int64_t now,
                    const char* state) {
  auto run = db.get("INSERT INTO runs(job_id, attempt, owner, state, started_ms) VALUES(?1, ?2, ?3, ?4, ?5)");
  if (!run.ok()) return run.status();
  auto job = db.get("UPDATE jobs SET state = ?7, attempts = ?2, lease_owner = ?3, lease_expires_ms = ?4, "
                    "lease_run_id = ?5, started_ms = ?6 WHERE id = ?1 AND state = 'pending'");
  if (!job.ok()) return job.status();
  for (Lease& lease : leases) {
    GB_RETURN_IF_ERROR(run->reset());
    run->bind(1, lease.job_id).bind(2, lease.attempt).bind(3, owner).bind(4, state).bind(5, now);
    GB_RETURN_IF_ERROR(run->run());
    lease.run_id = sqlite3_last_insert_rowid(db.db());
    GB_RETURN_IF_ERROR(job->reset());
    job->bind(1, lease.job_id).bind(2, lease.attempt).bind(3, owner).bind(4, lease.expires_ms);
    job->bind(5, lease.run_id).bind(6, now).bind(7, state);
    GB_RETURN_IF_ERROR(job->run());
    if (job->changes() != 1) return Error{"lease: job " + lease.hash + " changed under the write lock"};
  }
  return Status::Ok();
}

Status parse_lease_params(std::vector<Lease>& leases) {
  for (Lease& lease : leases) {
    if (!lease.params.is_null()) continue;  // parsed (and its job references resolved) already
    auto params = parse_json_column(lease.params_json, "params_json of job " + lease.hash);
    if (!params.ok()) return params.status();
    lease.params = std::move(*params);
  }
  return Status::Ok();
}

Result<WorkerRecord> read_worker(const Stmt& st) {
  // Columns: id, name, device_json, slots, engine_version, state, registered_ms, last_seen_ms.
  WorkerRecord w;
  w.id = st.int64(0);
  w.name = st.text(1);
  auto devices = parse_json_column(st.text(2), "device_json of worker " + w.name);
  if (!devices.ok()) return devices.error();
  w.devices = devices->is_array() ? std::move(*devices) : Json::array();
  w.slots = static_cast<int>(st.int64(3));
  w.engine_version = st.text(4);
  w.state = st.text(5);
  w.registered_ms = st.int64(6);
  w.last_seen_ms = st.int64(7);
  return w;
}

Result<engine::Series> read_series(const Stmt& st, int first, int64_t run_id, const std::string& path) {
  engine::Series s;
  s.name = st.text(first);
  s.x_unit = st.text(first + 1);
  s.y_unit = st.text(first + 2);
  auto points =
      decode_series_points(st.text(first + 3), path + ": series " + s.name + " of run " + std::to_string(run_id));
  if (!points.ok()) return points.error();
  s.points = std::move(points).value();
  return s;
}

Result<std::vector<engine::Series>> run_series(sqlite::StmtCache& db, int64_t run_id, const std::string& path) {
  auto st = db.get("SELECT name, x_unit, y_unit, points FROM series_data WHERE run_id = ?1 ORDER BY rowid");
  if (!st.ok()) return st.error();
  st->bind(1, run_id);
  std::vector<engine::Series> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    auto s = read_series(*st, 0, run_id, path);
    if (!s.ok()) return s.error();
    out.push_back(std::move(s).value());
  }
  return out;
}

}  // namespace store_internal

using namespace store_internal;

// ---------------------------------------------------------------------------------

std::string_view state_name(JobState s) { return kStateNames[static_cast<size_t>(s)]; }

std::optional<JobState> parse_state(std::string_view s) {
  for (size_t i = 0; i < kStateNames.size(); ++i) {
    if (kStateNames[i] == s) return static_cast<JobState>(i);
  }
  return std::nullopt;
}

bool is_terminal(JobState s) {
  switch (s) {
    case JobState::kSucceeded:
    case JobState::kFailed:
    case JobState::kOom:
    case JobState::kInvalid:
    case JobState::kTimeout:
    case JobState::kCancelled:
      return true;
    default:
      return false;
  }
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void DeviceCapacity::add_device(std::string_view kind, double memory_bytes) {
  any = std::max(any, memory_bytes);
  if (kind == "cpu") cpu = std::max(cpu, memory_bytes);
  if (kind == "cuda") cuda = std::max(cuda, memory_bytes);
}

void DeviceCapacity::merge(const DeviceCapacity& other) {
  any = std::max(any, other.any);
  cpu = std::max(cpu, other.cpu);
  cuda = std::max(cuda, other.cuda);
}

bool DeviceCapacity::can_run(std::string_view req_device, double memory_bytes) const {
  if (req_device == "any") return memory_bytes <= any;
  if (req_device == "cpu") return memory_bytes <= cpu;
  if (req_device == "cuda") return memory_bytes <= cuda;
  return false;
}

std::string device_class(const Json& device) {
  if (!device.is_object()) return "";
  auto kind = device.find("kind");
  if (kind == device.end() || !kind->is_string() || kind->get<std::string>().empty()) return "";
  auto name = device.find("name");
  return kind->get<std::string>() + ":" + (name != device.end() && name->is_string() ? name->get<std::string>() : "");
}

// ---------------------------------------------------------------------------------
// Grids

Result<SubmitStats> JobStore::submit_grid(const Grid& grid, bool rerun, int max_attempts,
                                          const RequirementFn& requirement, const std::optional<ReuseKey>& reuse) {
  if (grid.name.empty()) return Error{"submit_grid: the grid has no name"};
  if (max_attempts < 1) return Error{"submit_grid: max_attempts must be >= 1, got " + std::to_string(max_attempts)};
  // Placement requirements, computed before taking the write lock.
  std::vector<engine::Requirement> reqs;
  reqs.reserve(grid.jobs.size());
  for (const GridJob& gj : grid.jobs) {
    engine::Requirement r;
    if (requirement) {
      r = requirement(gj);
    } else if (const engine::JobKind* k = engine::find_job_kind(gj.kind)) {
      r = engine::job_requirement(*k, gj.params);
    }
    if (!engine::valid_requirement_device(r.device) || r.memory_bytes < 0) {
      return Error{"submit_grid: job " + gj.hash + " has an invalid requirement (device '" + r.device +
                   "', " + std::to_string(r.memory_bytes) + " bytes)"};
    }
    reqs.push_back(std::move(r));
  }
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  const int64_t now = now_ms();
  SubmitStats stats;

  GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                "INSERT INTO grids(name, source, spec_json, created_ms, updated_ms) "
                                "VALUES(?1, ?2, ?3, ?4, ?4) ON CONFLICT(name) DO UPDATE SET "
                                "source = excluded.source, spec_json = excluded.spec_json, "
                                "updated_ms = excluded.updated_ms, cancelled_ms = NULL",
                                [&](Stmt& s) {
                                  s.bind(1, grid.name).bind(2, grid.source);
                                  s.bind(3, grid.spec.dump(-1, ' ', false, Json::error_handler_t::replace));
                                  s.bind(4, now);
                                }));
  auto gid = grid_id_of(*stmts_, grid.name, path_);
  if (!gid.ok()) return gid.error();
  stats.grid_id = *gid;
  // The jobs it had: those that leave it are handled after the relinking.
  std::vector<int64_t> before;
  {
    auto st = stmts_->get("SELECT job_id FROM grid_jobs WHERE grid_id = ?1");
    if (!st.ok()) return st.error();
    st->bind(1, stats.grid_id);
    while (true) {
      auto row = st->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      before.push_back(st->int64(0));
    }
  }
  // Relinked below: jobs that left the grid stay in `jobs`, only unlinked.
  GB_RETURN_IF_ERROR(exec_bound(*stmts_, "DELETE FROM grid_jobs WHERE grid_id = ?1",
                                [&](Stmt& s) { s.bind(1, stats.grid_id); }));

  auto insert = stmts_->get("INSERT INTO jobs(hash, kind, params_json, repeat, state, attempts, "
                            "max_attempts, created_ms, req_device, req_memory_bytes) "
                            "VALUES(?1, ?2, ?3, ?4, 'pending', 0, ?5, ?6, ?7, ?8) "
                            "ON CONFLICT(hash) DO NOTHING");
  auto select = stmts_->get("SELECT id, state FROM jobs WHERE hash = ?1");
  auto reset = stmts_->get("UPDATE jobs SET state = 'pending', attempts = 0, max_attempts = ?2, "
                           "error = '', started_ms = NULL, finished_ms = NULL WHERE id = ?1");
  auto set_max = stmts_->get("UPDATE jobs SET max_attempts = ?2 WHERE id = ?1");
  auto result_run = stmts_->get("SELECT ru.engine_version, ru.device_json FROM jobs j "
                                "JOIN runs ru ON ru.id = j.result_run_id WHERE j.id = ?1");
  auto link = stmts_->get("INSERT INTO grid_jobs(grid_id, job_id, position) VALUES(?1, ?2, ?3)");
  auto set_req = stmts_->get("UPDATE jobs SET req_device = ?2, req_memory_bytes = ?3 "
                             "WHERE id = ?1 AND (req_device <> ?2 OR req_memory_bytes <> ?3)");
  for (auto* s : {&insert, &select, &reset, &set_max, &result_run, &link, &set_req}) {
    if (!s->ok()) return s->error();
  }

  std::set<std::string> seen;
  for (size_t pos = 0; pos < grid.jobs.size(); ++pos) {
    const GridJob& gj = grid.jobs[pos];
    if (!seen.insert(gj.hash).second) continue;  // the same job twice: its first position counts
    GB_RETURN_IF_ERROR(insert->reset());
    insert->bind(1, gj.hash).bind(2, gj.kind).bind(3, dump_json(gj.params)).bind(4, gj.repeat);
    insert->bind(5, max_attempts).bind(6, now).bind(7, reqs[pos].device).bind(8, reqs[pos].memory_bytes);
    GB_RETURN_IF_ERROR(insert->run());
    if (insert->changes() == 1) {
      // A new job: stored as it should be (pending, its attempts and requirements).
      const int64_t job_id = sqlite3_last_insert_rowid(db_);
      ++stats.queued;
      GB_RETURN_IF_ERROR(link->reset());
      link->bind(1, stats.grid_id).bind(2, job_id).bind(3, static_cast<int64_t>(pos));
      GB_RETURN_IF_ERROR(link->run());
      continue;
    }

    GB_RETURN_IF_ERROR(select->reset());
    select->bind(1, gj.hash);
    auto row = select->step();
    if (!row.ok()) return row.error();
    if (!*row) return Error{"submit_grid: job " + gj.hash + " vanished after insert"};
    const int64_t job_id = select->int64(0);
    auto state = parse_state_column(select->text(1), "job " + gj.hash);
    if (!state.ok()) return state.error();

    bool do_reset = false;
    switch (*state) {
      case JobState::kSucceeded: {
        bool reusable = !rerun;
        const engine::JobKind* kind = engine::find_job_kind(gj.kind);
        if (reusable && reuse && !(kind && kind->theory_only)) {
          // A measured result: reused only from the same build on a device of a class
          // the runner has (ReuseKey); its run stays when the job runs again.
          GB_RETURN_IF_ERROR(result_run->reset());
          result_run->bind(1, job_id);
          auto rr = result_run->step();
          if (!rr.ok()) return rr.error();
          if (!*rr) {
            reusable = false;  // no result run to compare with
          } else {
            const std::string built_by = result_run->text(0);
            auto device = parse_json_column(result_run->text(1), "device_json of the result of job " + gj.hash);
            GB_RETURN_IF_ERROR(result_run->reset());
            if (!device.ok()) return device.error();
            const std::string cls = device_class(*device);
            reusable = built_by == reuse->engine_version &&
                       (cls.empty() || std::find(reuse->device_classes.begin(), reuse->device_classes.end(),
                                                 cls) != reuse->device_classes.end());
          }
        }
        if (reusable) {
          ++stats.reused;
        } else {
          do_reset = true;
        }
        break;
      }
      case JobState::kFailed:
      case JobState::kOom:
      case JobState::kInvalid:
      case JobState::kTimeout:
      case JobState::kCancelled:
        do_reset = true;
        break;
      case JobState::kPending:
        GB_RETURN_IF_ERROR(set_max->reset());
        set_max->bind(1, job_id).bind(2, max_attempts);
        GB_RETURN_IF_ERROR(set_max->run());
        ++stats.queued;
        break;
      case JobState::kLeased:
      case JobState::kRunning:
        ++stats.queued;  // unfinished: left to its lease holder
        break;
    }
    if (do_reset) {
      // result_run_id is kept: the old result stays the job's result until a new
      // success replaces it.
      GB_RETURN_IF_ERROR(reset->reset());
      reset->bind(1, job_id).bind(2, max_attempts);
      GB_RETURN_IF_ERROR(reset->run());
      ++stats.queued;
    }
    GB_RETURN_IF_ERROR(link->reset());
    link->bind(1, stats.grid_id).bind(2, job_id).bind(3, static_cast<int64_t>(pos));
    GB_RETURN_IF_ERROR(link->run());
    GB_RETURN_IF_ERROR(set_req->reset());
    set_req->bind(1, job_id).bind(2, reqs[pos].device).bind(3, reqs[pos].memory_bytes);
    GB_RETURN_IF_ERROR(set_req->run());
  }
  // Lease order (queue_key) of this grid's jobs, and of pending jobs that left it.
  GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                "UPDATE jobs SET queue_key = (SELECT MIN((gj.grid_id << 32) + gj.position) "
                                "FROM grid_jobs gj WHERE gj.job_id = jobs.id) "
                                "WHERE id IN (SELECT job_id FROM grid_jobs WHERE grid_id = ?1) "
                                "OR (state = 'pending' AND queue_key BETWEEN (?1 << 32) AND ((?1 + 1) << 32) - 1)",
                                [&](Stmt& s) { s.bind(1, stats.grid_id); }));
  // Jobs that left the grid: their queue_key from the grids that still link them
  // (NULL when none does), and those unfinished that no other grid (not cancelled)
  // wants are cancelled, a running one's worker told at its next renewal.
  {
    auto relinked = stmts_->get("SELECT 1 FROM grid_jobs WHERE grid_id = ?1 AND job_id = ?2");
    auto rekey = stmts_->get("UPDATE jobs SET queue_key = (SELECT MIN((gj.grid_id << 32) + gj.position) "
                             "FROM grid_jobs gj WHERE gj.job_id = jobs.id) WHERE id = ?1");
    auto wanted = stmts_->get("SELECT j.state, IFNULL(j.lease_run_id, 0), EXISTS (SELECT 1 FROM grid_jobs o "
                              "JOIN grids og ON og.id = o.grid_id WHERE o.job_id = j.id AND og.cancelled_ms IS NULL) "
                              "FROM jobs j WHERE j.id = ?1");
    for (auto* st : {&relinked, &rekey, &wanted}) {
      if (!st->ok()) return st->error();
    }
    const std::string why = "left grid " + grid.name + " on resubmission";
    for (const int64_t job_id : before) {
      GB_RETURN_IF_ERROR(relinked->reset());
      relinked->bind(1, stats.grid_id).bind(2, job_id);
      auto still = relinked->step();
      if (!still.ok()) return still.error();
      if (*still) continue;
      GB_RETURN_IF_ERROR(rekey->reset());
      rekey->bind(1, job_id);
      GB_RETURN_IF_ERROR(rekey->run());
      GB_RETURN_IF_ERROR(wanted->reset());
      wanted->bind(1, job_id);
      auto row = wanted->step();
      if (!row.ok()) return row.error();
      if (!*row) continue;
      auto state = parse_state_column(wanted->text(0), "job " + std::to_string(job_id));
      if (!state.ok()) return state.error();
      const int64_t run_id = wanted->int64(1);
      const bool other_grid = wanted->int64(2) != 0;
      if (other_grid || is_terminal(*state)) continue;
      if (run_id != 0) {
        GB_RETURN_IF_ERROR(end_lease(*stmts_, job_id, run_id, "cancelled", JobState::kCancelled, why, why, now,
                                     /*give_back_attempt=*/false));
      } else {
        GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                      "UPDATE jobs SET state = 'cancelled', error = ?2, finished_ms = ?3 "
                                      "WHERE id = ?1",
                                      [&](Stmt& s) { s.bind(1, job_id).bind(2, why).bind(3, now); }));
      }
      ++stats.left_cancelled;
    }
  }
  stats.jobs = static_cast<int64_t>(seen.size());
  GB_RETURN_IF_ERROR(txn->commit());
  return stats;
}

Result<int64_t> JobStore::cancel_grid(const std::string& name) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  const int64_t now = now_ms();
  auto gid = grid_id_of(*stmts_, name, path_);
  if (!gid.ok()) return gid.error();
  GB_RETURN_IF_ERROR(exec_bound(*stmts_, "UPDATE grids SET cancelled_ms = ?2 WHERE id = ?1",
                                [&](Stmt& s) { s.bind(1, *gid).bind(2, now); }));

  struct Row {
    int64_t job_id;
    int64_t run_id;  // 0: not leased
  };
  std::vector<Row> rows;
  {
    // Unfinished jobs of this grid that no other grid still wants (one that has not
    // been cancelled itself).
    auto st = stmts_->get("SELECT j.id, IFNULL(j.lease_run_id, 0) FROM grid_jobs gj "
                          "JOIN jobs j ON j.id = gj.job_id "
                          "WHERE gj.grid_id = ?1 AND j.state IN ('pending', 'leased', 'running') "
                          "AND NOT EXISTS (SELECT 1 FROM grid_jobs o JOIN grids og ON og.id = o.grid_id "
                          "  WHERE o.job_id = j.id AND o.grid_id <> ?1 AND og.cancelled_ms IS NULL)");
    if (!st.ok()) return st.error();
    st->bind(1, *gid);
    while (true) {
      auto row = st->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      rows.push_back({st->int64(0), st->int64(1)});
    }
  }
  const std::string why = "grid " + name + " cancelled";
  for (const Row& r : rows) {
    if (r.run_id != 0) {
      GB_RETURN_IF_ERROR(end_lease(*stmts_, r.job_id, r.run_id, "cancelled", JobState::kCancelled, why, why, now,
                                   /*give_back_attempt=*/false));
    } else {
      GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                    "UPDATE jobs SET state = 'cancelled', error = ?2, finished_ms = ?3 "
                                    "WHERE id = ?1",
                                    [&](Stmt& s) { s.bind(1, r.job_id).bind(2, why).bind(3, now); }));
    }
  }
  GB_RETURN_IF_ERROR(txn->commit());
  return static_cast<int64_t>(rows.size());
}

// ---------------------------------------------------------------------------------
// Workers

Result<WorkerRecord> JobStore::register_worker(const std::string& name, const Json& devices, int slots,
                                               const std::string& engine_version) {
  if (name.empty()) return Error{"register_worker: the worker name must not be empty"};
  if (slots < 1) return Error{"register_worker: slots must be >= 1, got " + std::to_string(slots)};
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  const int64_t now = now_ms();
  GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                "INSERT INTO workers(name, device_json, slots, registered_ms, last_seen_ms, "
                                "state, engine_version) VALUES(?1, ?2, ?3, ?4, ?4, 'active', ?5) "
                                "ON CONFLICT(name) DO UPDATE SET device_json = excluded.device_json, "
                                "slots = excluded.slots, last_seen_ms = excluded.last_seen_ms, "
                                "state = 'active', engine_version = excluded.engine_version",
                                [&](Stmt& s) {
                                  s.bind(1, name).bind(2, dump_json(devices)).bind(3, slots).bind(4, now);
                                  s.bind(5, engine_version);
                                }));
  auto st = stmts_->get(std::string("SELECT ") + kWorkerColumns + " FROM workers WHERE name = ?1");
  if (!st.ok()) return st.error();
  st->bind(1, name);
  auto row = st->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error{"register_worker: worker " + name + " vanished after insert"};
  auto w = read_worker(*st);
  if (!w.ok()) return w.error();
  GB_RETURN_IF_ERROR(txn->commit());
  return w;
}

Status JobStore::update_workers(const std::vector<WorkerUpdate>& updates) {
  if (updates.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.status();
  auto st = stmts_->get("UPDATE workers SET state = ?2, last_seen_ms = MAX(last_seen_ms, ?3) WHERE name = ?1");
  if (!st.ok()) return st.status();
  for (const WorkerUpdate& u : updates) {
    GB_RETURN_IF_ERROR(st->reset());
    st->bind(1, u.name).bind(2, u.state).bind(3, u.last_seen_ms);
    GB_RETURN_IF_ERROR(st->run());
  }
  return txn->commit();
}

}  // namespace gb::coord

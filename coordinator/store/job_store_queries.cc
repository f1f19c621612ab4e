// JobStore (job_store.h), part 4 of 5: the read queries, for reports, the CLI and
// the daemon: grids (list_grids, grid_summary, grid_jobs, grid_spec), results
// (grid_results, job_series), placement (unplaceable) and workers (list_workers,
// lease_counts). Each reads only, under mu_. Not here: any write (job_store.cc,
// job_store_leases.cc), the lease lookups run_info and lease_owners
// (job_store_leases.cc), the schema (job_store_schema.cc).
#include "coordinator/store/job_store.h"

#include <unordered_map>
#include <utility>

#include "coordinator/store/codecs/run_metrics.h"
#include "coordinator/store/job_store_internal.h"
#include "coordinator/store/sqlite_util.h"

namespace gb::coord {

using namespace store_internal;

namespace {

using sqlite::Stmt;
using sqlite::Transaction;

Result<StoredJob> read_stored_job(const Stmt& st, int first_col, bool parse_params) {
  // Columns: id, hash, kind, params_json, repeat, state, attempts, max_attempts,
  // lease_owner, lease_expires_ms, error, result_run_id.
  int c = first_col;
  StoredJob j;
  j.id = st.int64(c + 0);
  j.hash = st.text(c + 1);
  j.kind = st.text(c + 2);
  j.params_json = st.text(c + 3);
  if (parse_params) {
    auto params = parse_json_column(j.params_json, "params_json of job " + j.hash);
    if (!params.ok()) return params.error();
    j.params = std::move(*params);
  }
  j.repeat = static_cast<int>(st.int64(c + 4));
  auto state = parse_state_column(st.text(c + 5), "job " + j.hash);
  if (!state.ok()) return state.error();
  j.state = *state;
  j.attempts = static_cast<int>(st.int64(c + 6));
  j.max_attempts = static_cast<int>(st.int64(c + 7));
  j.lease_owner = st.text(c + 8);
  j.lease_expires_ms = st.int64(c + 9);
  j.error = st.text(c + 10);
  j.result_run_id = st.int64(c + 11);
  j.req_device = st.text(c + 12);
  j.req_memory_bytes = st.int64(c + 13);
  j.progress = st.real(c + 14);
  j.progress_message = st.text(c + 15);
  return j;
}

// Needs "LEFT JOIN runs lr ON lr.id = j.lease_run_id" (the current run's progress).
constexpr const char* kStoredJobColumns =
    "j.id, j.hash, j.kind, j.params_json, j.repeat, j.state, j.attempts, j.max_attempts, "
    "j.lease_owner, j.lease_expires_ms, j.error, j.result_run_id, j.req_device, j.req_memory_bytes, "
    "IFNULL(lr.progress, 0), IFNULL(lr.progress_message, '')";

Result<std::vector<GridSummary>> read_summaries(sqlite::StmtCache& db, const std::string* name) {
  std::vector<GridSummary> out;
  std::unordered_map<int64_t, size_t> index;
  {
    auto st = db.get("SELECT id, name, source, created_ms, updated_ms FROM grids "
                     "WHERE ?1 IS NULL OR name = ?1 ORDER BY id");
    if (!st.ok()) return st.error();
    if (name != nullptr) st->bind(1, *name);
    while (true) {
      auto row = st->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      GridSummary g;
      g.id = st->int64(0);
      g.name = st->text(1);
      g.source = st->text(2);
      g.created_ms = st->int64(3);
      g.updated_ms = st->int64(4);
      for (auto s : kStateNames) g.by_state[std::string(s)] = 0;
      index[g.id] = out.size();
      out.push_back(std::move(g));
    }
  }
  auto st = db.get("SELECT gj.grid_id, j.state, COUNT(*) FROM grid_jobs gj "
                   "JOIN jobs j ON j.id = gj.job_id JOIN grids g ON g.id = gj.grid_id "
                   "WHERE ?1 IS NULL OR g.name = ?1 GROUP BY gj.grid_id, j.state");
  if (!st.ok()) return st.error();
  if (name != nullptr) st->bind(1, *name);
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    auto it = index.find(st->int64(0));
    if (it == index.end()) continue;
    GridSummary& g = out[it->second];
    g.by_state[st->text(1)] += st->int64(2);
    g.total += st->int64(2);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------
// Reads

Result<std::vector<GridSummary>> JobStore::list_grids() {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kRead);
  if (!txn.ok()) return txn.error();
  auto out = read_summaries(*stmts_, nullptr);
  if (!out.ok()) return out.error();
  GB_RETURN_IF_ERROR(txn->commit());
  return out;
}

Result<std::optional<GridSummary>> JobStore::grid_summary(const std::string& name) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kRead);
  if (!txn.ok()) return txn.error();
  auto out = read_summaries(*stmts_, &name);
  if (!out.ok()) return out.error();
  GB_RETURN_IF_ERROR(txn->commit());
  if (out->empty()) return std::optional<GridSummary>();
  return std::optional<GridSummary>(std::move(out->front()));
}

Result<std::vector<StoredJob>> JobStore::grid_jobs(const std::string& name, bool parse_params) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kRead);
  if (!txn.ok()) return txn.error();
  auto gid = grid_id_of(*stmts_, name, path_);
  if (!gid.ok()) return gid.error();
  auto st = stmts_->get(std::string("SELECT ") + kStoredJobColumns +
                                   " FROM grid_jobs gj JOIN jobs j ON j.id = gj.job_id "
                                   "LEFT JOIN runs lr ON lr.id = j.lease_run_id "
                                   "WHERE gj.grid_id = ?1 ORDER BY gj.position");
  if (!st.ok()) return st.error();
  st->bind(1, *gid);
  std::vector<StoredJob> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    auto job = read_stored_job(*st, 0, parse_params);
    if (!job.ok()) return job.error();
    out.push_back(std::move(*job));
  }
  GB_RETURN_IF_ERROR(txn->commit());
  return out;
}

Result<std::pair<std::string, std::string>> JobStore::grid_spec(const std::string& name) {
  std::lock_guard lock(mu_);
  auto st = stmts_->get("SELECT spec_json, source FROM grids WHERE name = ?1");
  if (!st.ok()) return st.error();
  st->bind(1, name);
  auto row = st->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error{"no grid named '" + name + "' in " + path_};
  return std::make_pair(st->text(0), st->text(1));
}

Result<std::vector<ResultRow>> JobStore::grid_results(const std::string& name) {
  Result<ResultsPage> page = grid_results_page(name, 0, 0);
  if (!page.ok()) return page.error();
  return std::move(page->rows);
}

Result<JobStore::ResultsPage> JobStore::grid_results_page(const std::string& name, int64_t from_position,
                                                          int64_t max_jobs) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kRead);
  if (!txn.ok()) return txn.error();
  auto gid = grid_id_of(*stmts_, name, path_);
  if (!gid.ok()) return gid.error();
  ResultsPage page;
  if (max_jobs > 0) {
    // The position of the first job past this page, if any.
    auto end = stmts_->get("SELECT position FROM grid_jobs WHERE grid_id = ?1 AND position >= ?2 "
                           "ORDER BY position LIMIT 1 OFFSET ?3");
    if (!end.ok()) return end.error();
    end->bind(1, *gid).bind(2, from_position).bind(3, max_jobs);
    auto row = end->step();
    if (!row.ok()) return row.error();
    if (*row) page.next_from_position = end->int64(0);
  }
  auto st = stmts_->get("SELECT j.id, j.hash, j.kind, j.params_json, j.repeat, r.metrics, "
                        "ru.device_json, ru.engine_version "
                        "FROM grid_jobs gj JOIN jobs j ON j.id = gj.job_id "
                        "JOIN runs ru ON ru.id = j.result_run_id "
                        "JOIN results_data r ON r.run_id = ru.id "
                        "WHERE gj.grid_id = ?1 AND gj.position >= ?2 AND (?3 = 0 OR gj.position < ?3) "
                        "ORDER BY gj.position");
  if (!st.ok()) return st.error();
  st->bind(1, *gid).bind(2, from_position).bind(3, page.next_from_position);
  std::vector<ResultRow>& out = page.rows;
  std::unordered_map<std::string, SharedJson> devices;  // device_json text -> parsed
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    const int64_t job_id = st->int64(0);
    const std::string hash = st->text(1);
    const std::string kind = st->text(2);
    auto p = parse_json_column(st->text(3), "params_json of job " + hash);
    if (!p.ok()) return p.error();
    auto metrics = decode_run_metrics(st->text(5), path_ + ": the result of job " + hash);
    if (!metrics.ok()) return metrics.error();
    // The runs of a grid mostly share one device: each distinct text parsed once.
    const std::string device_text = st->text(6);
    auto known = devices.find(device_text);
    if (known == devices.end()) {
      auto d = parse_json_column(device_text, "device_json of the result of job " + hash);
      if (!d.ok()) return d.error();
      known = devices.emplace(device_text, SharedJson(std::move(*d))).first;
    }
    const SharedJson params = std::move(*p), device = known->second;
    const int repeat = static_cast<int>(st->int64(4));
    const std::string engine_version = st->text(7);
    for (engine::Metric& m : *metrics) {
      ResultRow r;
      r.job_id = job_id;
      r.hash = hash;
      r.kind = kind;
      r.params = params;
      r.repeat = repeat;
      r.metric = std::move(m.name);
      r.value = m.value;
      r.unit = std::move(m.unit);
      r.text = std::move(m.text);
      r.device = device;
      r.engine_version = engine_version;
      out.push_back(std::move(r));
    }
  }
  GB_RETURN_IF_ERROR(txn->commit());
  return page;
}

Result<std::vector<engine::Series>> JobStore::job_series(int64_t job_id) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kRead);
  if (!txn.ok()) return txn.error();
  int64_t run_id = 0;
  {
    auto st = stmts_->get("SELECT IFNULL(result_run_id, 0) FROM jobs WHERE id = ?1");
    if (!st.ok()) return st.error();
    st->bind(1, job_id);
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) return Error{"no job with id " + std::to_string(job_id) + " in " + path_};
    run_id = st->int64(0);
  }
  std::vector<engine::Series> out;
  if (run_id != 0) {
    Result<std::vector<engine::Series>> series = run_series(*stmts_, run_id, path_);
    if (!series.ok()) return series.error();
    out = std::move(series).value();
  }
  GB_RETURN_IF_ERROR(txn->commit());
  return out;
}

Result<std::map<std::string, std::vector<engine::Series>>> JobStore::grid_series(const std::string& name) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kRead);
  if (!txn.ok()) return txn.error();
  auto gid = grid_id_of(*stmts_, name, path_);
  if (!gid.ok()) return gid.error();
  auto st = stmts_->get("SELECT j.hash, s.run_id, s.name, s.x_unit, s.y_unit, s.points "
                        "FROM grid_jobs gj JOIN jobs j ON j.id = gj.job_id "
                        "JOIN series_data s ON s.run_id = j.result_run_id "
                        "WHERE gj.grid_id = ?1 ORDER BY gj.position, s.rowid");
  if (!st.ok()) return st.error();
  st->bind(1, *gid);
  std::map<std::string, std::vector<engine::Series>> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    auto s = read_series(*st, 2, st->int64(1), path_);
    if (!s.ok()) return s.error();
    out[st->text(0)].push_back(std::move(s).value());
  }
  GB_RETURN_IF_ERROR(txn->commit());
  return out;
}

// ---------------------------------------------------------------------------------
// Placement and workers

Result<std::map<std::string, int64_t>> JobStore::unplaceable(const DeviceCapacity& capacity,
                                                            const std::string& grid_name) {
  std::lock_guard lock(mu_);
  auto st = stmts_->get("SELECT g.name, COUNT(*) FROM grid_jobs gj JOIN jobs j ON j.id = gj.job_id "
                        "JOIN grids g ON g.id = gj.grid_id "
                        "WHERE j.state = 'pending' AND (?1 = '' OR g.name = ?1) AND NOT " +
                              fits_capacity_sql(2) + " GROUP BY g.name");
  if (!st.ok()) return st.error();
  st->bind(1, grid_name);
  bind_capacity(*st, 2, capacity);
  std::map<std::string, int64_t> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out[st->text(0)] = st->int64(1);
  }
  return out;
}

Result<std::vector<WorkerRecord>> JobStore::list_workers() {
  std::lock_guard lock(mu_);
  auto st = stmts_->get(std::string("SELECT ") + kWorkerColumns + " FROM workers ORDER BY id");
  if (!st.ok()) return st.error();
  std::vector<WorkerRecord> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    auto w = read_worker(*st);
    if (!w.ok()) return w.error();
    out.push_back(std::move(*w));
  }
  return out;
}

Result<std::map<std::string, int64_t>> JobStore::lease_counts() {
  std::lock_guard lock(mu_);
  auto st = stmts_->get("SELECT lease_owner, COUNT(*) FROM jobs WHERE state IN ('leased', 'running') "
                        "GROUP BY lease_owner");
  if (!st.ok()) return st.error();
  std::map<std::string, int64_t> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out[st->text(0)] = st->int64(1);
  }
  return out;
}

}  // namespace gb::coord

// JobStore (job_store.h): jobs that depend on another job's output. A grid's
// kv_calibration "job:kv_calibrate" is stored as "job:HASH" (coordinator/grid/grid.h),
// the hash of the kv_calibrate job of the same point. Three rules, one per
// function: such a job is not leased before every job it names has succeeded;
// when one of those ends failed, oom, invalid or timeout, its pending dependents
// end invalid with that reason (not retried: nothing would change it); and a
// lease hands out the dependency's output in place of "job:HASH" (the calibration's
// JSON, rebuilt from the ranges the kv_calibrate result stores as series), so the
// worker or embedded runner that runs the job needs no file of another machine.
// And for runners that must not wait for a dependency nobody will run: the jobs
// that wait, and an end for those whose dependency has ended without success.
#include <algorithm>
#include <string>

#include "coordinator/store/job_store_internal.h"

namespace gb::coord::store_internal {

using sqlite::Stmt;
using sqlite::Transaction;

std::string deps_ready_sql() {
  return "(instr(j.params_json, '\"job:') = 0 OR NOT EXISTS (SELECT 1 FROM json_each(j.params_json) p "
         "JOIN jobs d ON d.hash = substr(p.value, 5) WHERE p.type = 'text' AND p.value LIKE 'job:%' "
         "AND d.state != 'succeeded'))";
}

Status invalidate_dependents(sqlite::StmtCache& db, int64_t job_id, JobState state, const std::string& error,
                             int64_t now) {
  if (state != JobState::kFailed && state != JobState::kOom && state != JobState::kInvalid &&
      state != JobState::kTimeout)
    return Status::Ok();
  return exec_bound(db,
                    "UPDATE jobs SET state = 'invalid', finished_ms = ?3, "
                    "error = 'its dependency ' || (SELECT kind FROM jobs WHERE id = ?1) || ' job ' || "
                    "(SELECT hash FROM jobs WHERE id = ?1) || ' ended ' || ?2 || ': ' || ?4 "
                    "WHERE state = 'pending' AND "
                    "instr(params_json, '\"job:' || (SELECT hash FROM jobs WHERE id = ?1) || '\"') > 0",
                    [&](Stmt& s) {
                      s.bind(1, job_id).bind(2, state_name(state)).bind(3, now);
                      s.bind(4, error.substr(0, 500));
                    });
}

namespace {

// The calibration a succeeded kv_calibrate run stores: its num_layers and
// num_kv_heads metrics and its k_min, k_max, v_min, v_max series ([layer][head]),
// as engine/kv/kv_calibration.h's JSON.
Result<Json> calibration_of(sqlite::StmtCache& db, const std::string& hash, int64_t run_id, const Json& params) {
  const std::string where = "kv_calibrate job " + hash;
  int64_t layers = 0, heads = 0;
  {
    auto st = db.get("SELECT metric, value FROM results WHERE run_id = ?1 AND metric IN ('num_layers', 'num_kv_heads')");
    if (!st.ok()) return st.error();
    st->bind(1, run_id);
    while (true) {
      auto row = st->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      (st->text(0) == "num_layers" ? layers : heads) = static_cast<int64_t>(st->real(1));
    }
  }
  if (layers < 1 || heads < 1) return Error{where + ": its result has no num_layers and num_kv_heads"};
  // Each range series holds one point per (layer, head), x its index.
  Result<std::vector<engine::Series>> series = run_series(db, run_id, where);
  if (!series.ok()) return series.error();
  Json ranges = Json::object();
  for (engine::Series& s : *series) {
    if (s.name != "k_min" && s.name != "k_max" && s.name != "v_min" && s.name != "v_max") continue;
    std::stable_sort(s.points.begin(), s.points.end(),
                     [](const engine::SeriesPoint& a, const engine::SeriesPoint& b) { return a.x < b.x; });
    Json& v = ranges[s.name] = Json::array();
    for (const engine::SeriesPoint& p : s.points) v.push_back(p.y);
  }
  Json out_layers = Json::array();
  for (int64_t l = 0; l < layers; ++l) {
    Json entry = Json::object();
    for (const char* name : {"k_min", "k_max", "v_min", "v_max"}) {
      const Json& v = ranges.contains(name) ? ranges[name] : Json::array();
      if (static_cast<int64_t>(v.size()) != layers * heads)
        return Error{where + ": its result's series " + name + " has " + std::to_string(v.size()) +
                     " points, expected num_layers x num_kv_heads = " + std::to_string(layers * heads)};
      entry[name] = Json(std::vector<Json>(v.begin() + l * heads, v.begin() + (l + 1) * heads));
    }
    out_layers.push_back(std::move(entry));
  }
  return Json{{"format", "gridbench-kv-calibration"},
              {"version", 1},
              {"model", params.value("model", "")},
              {"keys", params.value("calib_keys", "rotated")},
              {"num_layers", layers},
              {"num_kv_heads", heads},
              {"layers", out_layers},
              {"job", hash}};
}

}  // namespace

Status resolve_job_refs(sqlite::StmtCache& db, Lease& lease) {
  if (!lease.params.is_object()) return Status::Ok();
  for (auto& [name, v] : lease.params.items()) {
    if (!v.is_string() || !v.get_ref<const std::string&>().starts_with("job:")) continue;
    const std::string hash = v.get<std::string>().substr(4);
    auto st = db.get("SELECT kind, params_json, state, result_run_id FROM jobs WHERE hash = ?1");
    if (!st.ok()) return st.error();
    st->bind(1, hash);
    auto row = st->step();
    if (!row.ok()) return row.error();
    // Left as it is, the job fails with the engine's message for an unresolved
    // reference; the lease rule makes this a job the store no longer has.
    if (!*row || st->text(0) != "kv_calibrate" || st->text(2) != "succeeded" || st->is_null(3)) continue;
    const int64_t run_id = st->int64(3);
    auto params = parse_json_column(st->text(1), "params_json of job " + hash);
    if (!params.ok()) return params.error();
    Result<Json> cal = calibration_of(db, hash, run_id, *params);
    if (!cal.ok()) return cal.error();
    v = cal->dump();
  }
  return Status::Ok();
}

}  // namespace gb::coord::store_internal

namespace gb::coord {

using namespace store_internal;

namespace {

Result<std::vector<DependencyWait>> read_waits(sqlite::StmtCache& db, int64_t grid_id) {
  auto st = db.get(
      "SELECT j.id, j.hash, j.kind, d.hash, d.kind, d.state, d.error, d.req_device, d.req_memory_bytes "
      "FROM grid_jobs gj JOIN jobs j ON j.id = gj.job_id, json_each(j.params_json) p "
      "JOIN jobs d ON d.hash = substr(p.value, 5) "
      "WHERE gj.grid_id = ?1 AND j.state = 'pending' AND instr(j.params_json, '\"job:') > 0 "
      "AND p.type = 'text' AND p.value LIKE 'job:%' AND d.state != 'succeeded' ORDER BY gj.position");
  if (!st.ok()) return st.error();
  st->bind(1, grid_id);
  std::vector<DependencyWait> out;
  while (true) {
    auto row = st->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    DependencyWait w;
    w.job_id = st->int64(0);
    w.hash = st->text(1);
    w.kind = st->text(2);
    w.dep_hash = st->text(3);
    w.dep_kind = st->text(4);
    auto state = parse_state_column(st->text(5), "job " + w.dep_hash);
    if (!state.ok()) return state.error();
    w.dep_state = *state;
    w.dep_error = st->text(6);
    w.dep_req_device = st->text(7);
    w.dep_req_memory_bytes = st->int64(8);
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace

Result<std::vector<DependencyWait>> JobStore::dependency_waits(const std::string& grid_name) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kRead);
  if (!txn.ok()) return txn.error();
  auto gid = grid_id_of(*stmts_, grid_name, path_);
  if (!gid.ok()) return gid.error();
  Result<std::vector<DependencyWait>> waits = read_waits(*stmts_, *gid);
  if (!waits.ok()) return waits.error();
  GB_RETURN_IF_ERROR(txn->commit());
  return waits;
}

Result<std::vector<DependencyWait>> JobStore::end_stranded_dependents(const std::string& grid_name) {
  std::lock_guard lock(mu_);
  auto txn = Transaction::begin(db_, Transaction::Mode::kWrite);
  if (!txn.ok()) return txn.error();
  auto gid = grid_id_of(*stmts_, grid_name, path_);
  if (!gid.ok()) return gid.error();
  Result<std::vector<DependencyWait>> waits = read_waits(*stmts_, *gid);
  if (!waits.ok()) return waits.error();
  std::vector<DependencyWait> ended;
  const int64_t now = now_ms();
  for (DependencyWait& w : *waits) {
    if (!is_terminal(w.dep_state)) continue;
    const std::string error = "its dependency " + w.dep_kind + " job " + w.dep_hash + " ended " +
                              std::string(state_name(w.dep_state)) + ": " + w.dep_error.substr(0, 500);
    GB_RETURN_IF_ERROR(exec_bound(*stmts_,
                                  "UPDATE jobs SET state = 'invalid', finished_ms = ?2, error = ?3 "
                                  "WHERE id = ?1 AND state = 'pending'",
                                  [&](Stmt& s) { s.bind(1, w.job_id).bind(2, now).bind(3, error); }));
    ended.push_back(std::move(w));
  }
  GB_RETURN_IF_ERROR(txn->commit());
  return ended;
}

}  // namespace gb::coord

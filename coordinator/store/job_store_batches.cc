// JobStore (job_store.h), part 5 of 5: batches of leases and completions for jobs
// computed in process (the theory-only kinds): many jobs per transaction, where
// the lease writes of part 3 take one each. Not here: the one-job lease writes and
// their group commit (job_store_leases.cc).
#include "coordinator/store/job_store.h"

#include <sqlite3.h>

#include "coordinator/store/job_store_internal.h"
#include "coordinator/store/sqlite_util.h"

namespace gb::coord {

using namespace store_internal;

Result<std::vector<Lease>> JobStore::lease_batch(const std::string& owner, int64_t lease_ms,
                                                 const std::string& grid_name, const std::vector<std::string>& kinds,
                                                 int limit, BatchCursor* cursor) {
  if (owner.empty()) return Error{"lease_batch: the lease owner must not be empty"};
  if (lease_ms <= 0) return Error{"lease_batch: lease_ms must be > 0, got " + std::to_string(lease_ms)};
  std::vector<Lease> out;
  if (limit <= 0 || kinds.empty() || grid_name.empty()) return out;
  const std::string kinds_json = dump_json(Json(kinds));
  int64_t last = -1;  // the grid position the batch ended at (the cursor moves once it is stored)
  const std::function<Status()> body = [&]() -> Status {
    out.clear();
    const int64_t now = now_ms();
    auto gid = grid_id_of(*stmts_, grid_name, path_);
    if (!gid.ok()) return gid.status();
    auto pick = stmts_->get(
        "SELECT j.id, j.hash, j.kind, j.params_json, j.repeat, j.attempts, gj.position "
        "FROM jobs j JOIN grid_jobs gj ON gj.job_id = j.id "
        "WHERE j.state = 'pending' AND gj.grid_id = ?1 AND gj.position > ?4 "
        "AND j.kind IN (SELECT value FROM json_each(?2)) "
        "ORDER BY gj.position LIMIT ?3");
    if (!pick.ok()) return pick.status();
    int64_t after = cursor != nullptr ? cursor->after_position : -1;
    last = after;
    for (int pass = 0; pass < 2 && out.empty(); ++pass) {
      if (pass == 1) {
        if (after < 0) break;  // the walk started at the top: nothing is left
        after = last = -1;     // past the end: once more from the top
      }
      GB_RETURN_IF_ERROR(pick->reset());
      pick->bind(1, *gid).bind(2, kinds_json).bind(3, static_cast<int64_t>(limit)).bind(4, after);
      while (true) {
        auto row = pick->step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        out.push_back(read_lease(*pick, now + lease_ms));
        last = pick->int64(6);
      }
    }
    GB_RETURN_IF_ERROR(pick->reset());
    return write_leases(*stmts_, out, owner, now, "running");
  };
  if (Status st = grouped(body); !st.ok()) return st.error();
  if (cursor != nullptr) cursor->after_position = last;
  if (Status st = parse_lease_params(out); !st.ok()) return st.error();
  return out;
}

Status JobStore::complete_batch(const std::string& owner, const std::vector<std::pair<int64_t, RunRecord>>& done) {
  if (done.empty()) return Status::Ok();
  return grouped([&]() -> Status {
    const int64_t now = now_ms();
    for (const auto& [run_id, record] : done) GB_RETURN_IF_ERROR(complete_held(run_id, owner, record, now));
    return Status::Ok();
  });
}

}  // namespace gb::coord

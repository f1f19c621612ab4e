// JobStore (job_store.h), part 5 of 5: batches of leases and completions for jobs
// computed in process (the theory-only kinds): many jobs per transaction, where
// the lease writes of part 3 take one each; for the embedded runner, the lease,
// the computation and the result of a batch in one transaction. Not here: the one-job lease writes and
// their group commit (job_store_leases.cc).
#include "coordinator/store/job_store.h"

#include <sqlite3.h>

#include "coordinator/store/job_store_internal.h"
#include "coordinator/store/sqlite_util.h"

namespace gb::coord {

using namespace store_internal;

namespace {

// Up to `limit` pending jobs of the grid whose kind is in `kinds_json`, in grid
// order past `cursor` (once more from the top when none is left past it), read as
// leases expiring at `expires_ms`; *last: the position the batch ended at.
Status pick_batch(sqlite::StmtCache& db, const std::string& path, const std::string& grid_name,
                  const std::string& kinds_json, int limit, const JobStore::BatchCursor* cursor,
                  int64_t expires_ms, std::vector<Lease>& out, int64_t* last) {
  out.clear();
  auto gid = grid_id_of(db, grid_name, path);
  if (!gid.ok()) return gid.status();
  auto pick = db.get(
      "SELECT j.id, j.hash, j.kind, j.params_json, j.repeat, j.attempts, gj.position "
      "FROM jobs j JOIN grid_jobs gj ON gj.job_id = j.id "
      "WHERE j.state = 'pending' AND gj.grid_id = ?1 AND gj.position > ?4 "
      "AND j.kind IN (SELECT value FROM json_each(?2)) "
      "ORDER BY gj.position LIMIT ?3");
  if (!pick.ok()) return pick.status();
  int64_t after = cursor != nullptr ? cursor->after_position : -1;
  *last = after;
  for (int pass = 0; pass < 2 && out.empty(); ++pass) {
    if (pass == 1) {
      if (after < 0) break;  // the walk started at the top: nothing is left
      after = *last = -1;    // past the end: once more from the top
    }
    GB_RETURN_IF_ERROR(pick->reset());
    pick->bind(1, *gid).bind(2, kinds_json).bind(3, static_cast<int64_t>(limit)).bind(4, after);
    while (true) {
      auto row = pick->step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.push_back(read_lease(*pick, expires_ms));
      *last = pick->int64(6);
    }
  }
  return pick->reset();
}

}  // namespace

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
    const int64_t now = now_ms();
    GB_RETURN_IF_ERROR(pick_batch(*stmts_, path_, grid_name, kinds_json, limit, cursor, now + lease_ms, out, &last));
    return write_leases(*stmts_, out, owner, now, "running");
  };
  if (Status st = grouped(body); !st.ok()) return st.error();
  if (cursor != nullptr) cursor->after_position = last;
  if (Status st = parse_lease_params(out); !st.ok()) return st.error();
  return out;
}

Result<std::vector<JobStore::InProcessJob>> JobStore::run_batch_in_process(
    const std::string& owner, const std::string& grid_name, const std::vector<std::string>& kinds, int limit,
    BatchCursor* cursor, const std::function<InProcessOutcome(const Lease&)>& compute) {
  if (owner.empty()) return Error{"run_batch_in_process: the owner must not be empty"};
  std::vector<InProcessJob> done;
  if (limit <= 0 || kinds.empty() || grid_name.empty()) return done;
  const std::string kinds_json = dump_json(Json(kinds));
  int64_t last = -1;
  const std::function<Status()> body = [&]() -> Status {
    done.clear();
    const int64_t now = now_ms();
    std::vector<Lease> picked;
    GB_RETURN_IF_ERROR(pick_batch(*stmts_, path_, grid_name, kinds_json, limit, cursor, now, picked, &last));
    GB_RETURN_IF_ERROR(parse_lease_params(picked));
    auto run = stmts_->get(
        "INSERT INTO runs(job_id, attempt, owner, state, started_ms, finished_ms, wall_ms, device_json, "
        "engine_version, error) VALUES(?1, ?2, ?3, 'succeeded', ?4, ?4, ?5, ?6, ?7, '')");
    if (!run.ok()) return run.status();
    auto job = stmts_->get(
        "UPDATE jobs SET state = 'succeeded', attempts = ?2, result_run_id = ?3, lease_owner = NULL, "
        "lease_expires_ms = NULL, lease_run_id = NULL, error = '', started_ms = ?4, finished_ms = ?4 "
        "WHERE id = ?1 AND state = 'pending'");
    if (!job.ok()) return job.status();
    for (Lease& lease : picked) {
      InProcessOutcome r = compute(lease);
      InProcessJob d;
      d.ok = r.ok;
      if (r.ok) {
        GB_RETURN_IF_ERROR(run->reset());
        run->bind(1, lease.job_id).bind(2, lease.attempt).bind(3, owner).bind(4, now).bind(5, r.record.wall_ms);
        run->bind(6, dump_json(r.record.device)).bind(7, r.record.engine_version);
        GB_RETURN_IF_ERROR(run->run());
        lease.run_id = sqlite3_last_insert_rowid(stmts_->db());
        GB_RETURN_IF_ERROR(job->reset());
        job->bind(1, lease.job_id).bind(2, lease.attempt).bind(3, lease.run_id).bind(4, now);
        GB_RETURN_IF_ERROR(job->run());
        if (job->changes() != 1) return Error{"run_batch_in_process: job " + lease.hash + " changed under the write lock"};
        GB_RETURN_IF_ERROR(write_run_outputs(*stmts_, lease.run_id, r.record));
      } else {
        // Rare (the registry checked the parameters): a run leased and failed, as fail() ends one.
        std::vector<Lease> one = {lease};
        GB_RETURN_IF_ERROR(write_leases(*stmts_, one, owner, now, "running"));
        lease.run_id = one[0].run_id;
        GB_RETURN_IF_ERROR(fail_held(lease.run_id, owner, r.outcome, r.error, /*retry=*/true, now, &d.job_state));
        d.error = std::move(r.error);
      }
      d.lease = std::move(lease);
      done.push_back(std::move(d));
    }
    return Status::Ok();
  };
  if (Status st = grouped(body); !st.ok()) return st.error();
  if (cursor != nullptr) cursor->after_position = last;
  return done;
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

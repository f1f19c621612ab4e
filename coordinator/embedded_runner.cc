#include "coordinator/embedded_runner.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <set>
#include <thread>
#include <vector>

#include "common/subprocess.h"
#include "engine/jobs/job_kinds.h"
#include "worker/job_spec.h"

namespace gb::coord {
namespace fs = std::filesystem;

namespace {

struct Slot {
  Lease lease;
  pid_t pid = 0;
  std::string result_path;
  std::string stderr_path;
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point renewed;
};

// Leases held by embedded runs on this host whose process is gone go back to
// pending now rather than after their expiry.
Status reclaim_dead_local_owners(JobStore& store) {
  Result<std::vector<std::string>> owners = store.lease_owners();
  if (!owners.ok()) return owners.error();
  const std::string prefix = "embedded:" + host_name() + ":";
  for (const auto& owner : *owners) {
    if (owner.rfind(prefix, 0) != 0) continue;
    pid_t pid = static_cast<pid_t>(std::stol(owner.substr(prefix.size())));
    if (pid == getpid() || process_alive(pid)) continue;
    GB_RETURN_IF_ERROR(store.reclaim_owner(owner));
  }
  return Status::Ok();
}

RunRecord record_from(const worker::JobResult& r) {
  RunRecord rec;
  rec.metrics = r.output.metrics;
  rec.series = r.output.series;
  rec.device = r.output.device;
  rec.engine_version = r.engine_version;
  rec.wall_ms = r.wall_ms;
  return rec;
}

}  // namespace

std::string embedded_owner() { return "embedded:" + host_name() + ":" + std::to_string(getpid()); }

Result<EmbeddedSummary> run_embedded(const Grid& grid, JobStore& store, const EmbeddedOptions& options,
                                     const std::atomic<bool>& stop,
                                     const std::function<void(const EmbeddedEvent&)>& on_event) {
  EmbeddedSummary summary;
  const std::string owner = embedded_owner();
  GB_RETURN_IF_ERROR(reclaim_dead_local_owners(store));
  GB_RETURN_IF_ERROR(store.expire_leases(now_ms()));
  Result<SubmitStats> submitted = store.submit_grid(grid, options.rerun, options.max_attempts, {}, options.reuse);
  if (!submitted.ok()) return submitted.error();
  summary.submitted = *submitted;

  std::error_code ec;
  fs::create_directories(fs::path(options.out_dir) / "jobs", ec);
  if (ec) return Error{options.out_dir + ": cannot create: " + ec.message()};
  // The jobs' quantized-model cache (engine/weights/quantized_cache.h), inherited by
  // each child: OUT_DIR/quant-cache unless GRIDBENCH_QUANT_CACHE names one.
  if (const char* d = std::getenv("GRIDBENCH_QUANT_CACHE"); d == nullptr || *d == '\0')
    setenv("GRIDBENCH_QUANT_CACHE", (fs::path(options.out_dir) / "quant-cache").c_str(), 1);

  std::vector<Slot> slots;
  // `known`: the grid's counts as the caller has them (the theory batches keep
  // theirs, where a summary query per batch of 1,000 cost as much as the batch).
  auto emit = [&](EmbeddedEvent ev, const GridSummary* known = nullptr) {
    if (!on_event) return;
    std::optional<GridSummary> read;
    if (known == nullptr) {
      Result<std::optional<GridSummary>> s = store.grid_summary(grid.name);
      if (s.ok()) read = std::move(*s);
    }
    if (known != nullptr || read) {
      const GridSummary& g = known != nullptr ? *known : *read;
      ev.total = g.total;
      for (const auto& [state, n] : g.by_state) {
        std::optional<JobState> st = parse_state(state);
        if (st && is_terminal(*st)) ev.done += n;
        if (st && *st != JobState::kSucceeded && is_terminal(*st)) ev.failed += n;
      }
    }
    ev.running = static_cast<int64_t>(slots.size());
    on_event(ev);
  };

  auto finish = [&](Slot& slot, const ExitInfo& exit, bool timed_out) -> Status {
    EmbeddedEvent ev{EmbeddedEvent::kFinished, slot.lease.hash, slot.lease.kind, "", ""};
    Result<Json> doc = worker::read_json_file(slot.result_path);
    Result<worker::JobResult> result =
        doc.ok() ? worker::job_result_from_json(*doc, slot.result_path) : Result<worker::JobResult>(doc.error());
    std::string stderr_tail = tail_file(slot.stderr_path, 2000);
    // A failure or a timeout with attempts left sends the job back to pending: a
    // retry (its own event), counted apart from the jobs' outcomes.
    auto retry_or = [&](const std::string& outcome, const std::string& error, int64_t* count) -> Status {
      Result<std::optional<RunInfo>> info = store.run_info(slot.lease.run_id);
      if (!info.ok()) return info.error();
      ev.detail = error;
      if (info->has_value() && (*info)->job_state == JobState::kPending) {
        ev.outcome = "retry";
        ev.detail = outcome + " on attempt " + std::to_string(slot.lease.attempt) + " of " +
                    std::to_string(options.max_attempts) + ": " + error;
        ++summary.retried;
      } else {
        ev.outcome = outcome;
        ++*count;
      }
      return Status::Ok();
    };
    if (timed_out) {
      char limit[32];
      std::snprintf(limit, sizeof(limit), "%g", options.job_timeout_s);
      const std::string error = "timed out after " + std::string(limit) + " s";
      GB_RETURN_IF_ERROR(store.fail(slot.lease.run_id, owner, JobState::kTimeout, error));
      GB_RETURN_IF_ERROR(retry_or("timeout", error, &summary.timeout));
    } else if (exit.exited && exit.code == worker::kExitSucceeded && result.ok()) {
      GB_RETURN_IF_ERROR(store.complete(slot.lease.run_id, owner, record_from(*result)));
      ++summary.succeeded;
      ev.outcome = "succeeded";
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.1f ms", result->wall_ms);
      ev.detail = buf;
    } else if (exit.exited && (exit.code == worker::kExitInvalid || exit.code == worker::kExitUsage)) {
      // Invalid as given (exit 5) or an invalid JOB.json (exit 2): no retry would change it.
      const std::string error = result.ok() && !result->error.empty() ? result->error : stderr_tail;
      GB_RETURN_IF_ERROR(store.fail(slot.lease.run_id, owner, JobState::kInvalid, error));
      ++summary.invalid;
      ev.outcome = "invalid";
      ev.detail = error;
    } else if (exit.exited && exit.code == worker::kExitOom) {
      std::string error = result.ok() ? result->error : stderr_tail;
      GB_RETURN_IF_ERROR(store.fail(slot.lease.run_id, owner, JobState::kOom, error));
      ++summary.oom;
      ev.outcome = "oom";
      ev.detail = error;
    } else {
      std::string error = result.ok() && !result->error.empty() ? result->error : "";
      if (error.empty()) error = "gridbench-job " + exit.describe() + (stderr_tail.empty() ? "" : ": " + stderr_tail);
      GB_RETURN_IF_ERROR(store.fail(slot.lease.run_id, owner, JobState::kFailed, error));
      GB_RETURN_IF_ERROR(retry_or("failed", error, &summary.failed));
    }
    emit(ev);
    return Status::Ok();
  };

  auto start = [&](const Lease& lease) -> Status {
    fs::path dir = fs::path(options.out_dir) / "jobs" / (lease.hash + "-run" + std::to_string(lease.run_id));
    fs::create_directories(dir, ec);
    if (ec) return Error{dir.string() + ": cannot create: " + ec.message()};
    worker::JobSpec spec{lease.kind, lease.hash, lease.repeat, lease.params};
    std::string spec_path = (dir / "job.json").string();
    GB_RETURN_IF_ERROR(worker::write_json_file(spec_path, worker::job_spec_to_json(spec)));
    Slot slot;
    slot.lease = lease;
    slot.result_path = (dir / "result.json").string();
    slot.stderr_path = (dir / "stderr.log").string();
    GB_RETURN_IF_ERROR(store.mark_running(lease.run_id, owner, options.lease_ms));
    Result<pid_t> pid = spawn_process({options.job_binary, "--spec", spec_path, "--out", slot.result_path},
                                      (dir / "stdout.log").string(), slot.stderr_path);
    if (!pid.ok()) {
      GB_RETURN_IF_ERROR(store.fail(lease.run_id, owner, JobState::kFailed, pid.message()));
      return pid.error();  // the job binary is missing: nothing else will run either
    }
    slot.pid = *pid;
    slot.started = slot.renewed = std::chrono::steady_clock::now();
    slots.push_back(slot);
    emit({EmbeddedEvent::kStarted, lease.hash, lease.kind, "", ""});
    return Status::Ok();
  };

  // Theory-only jobs in process, a batch per transaction (EmbeddedOptions::run_in_process).
  std::vector<std::string> theory_kinds;
  for (const engine::JobKind& k : engine::job_kinds())
    if (k.theory_only) theory_kinds.push_back(k.name);
  std::optional<GridSummary> theory_counts;
  JobStore::BatchCursor cursor;  // one walk of the grid for all batches
  auto run_theory_batch = [&]() -> Result<bool> {
    const auto t0 = std::chrono::steady_clock::now();
    // Lease, computation and result of each job in one transaction (nothing else
    // computes this grid's theory jobs while this runner does).
    Result<std::vector<JobStore::InProcessJob>> batch = store.run_batch_in_process(
        owner, grid.name, theory_kinds, std::max(options.batch_size, 1), &cursor,
        [&](const Lease& lease) {
          worker::JobResult r = options.run_in_process({lease.kind, lease.hash, lease.repeat, lease.params});
          JobStore::InProcessOutcome out;
          out.ok = r.status == worker::JobStatus::kSucceeded;
          if (out.ok) {
            out.record = record_from(r);
          } else {
            out.outcome = r.status == worker::JobStatus::kOom       ? JobState::kOom
                          : r.status == worker::JobStatus::kInvalid ? JobState::kInvalid
                                                                    : JobState::kFailed;
            out.error = r.error;
          }
          return out;
        });
    if (!batch.ok()) return batch.error();
    if (batch->empty()) return false;
    int64_t succeeded = 0;
    for (const JobStore::InProcessJob& j : *batch) {
      if (j.ok) {
        ++succeeded;
        continue;
      }
      // Rare (the registry checked the parameters): each failure has its event, as a child's.
      EmbeddedEvent ev{EmbeddedEvent::kFinished, j.lease.hash, j.lease.kind, "failed", j.error};
      if (j.job_state == JobState::kInvalid) {
        ev.outcome = "invalid";
        ++summary.invalid;
      } else if (j.job_state == JobState::kOom) {
        ev.outcome = "oom";
        ++summary.oom;
      } else if (j.job_state == JobState::kPending) {
        ev.outcome = "retry";
        ++summary.retried;
      } else {
        ++summary.failed;
      }
      emit(ev);
    }
    summary.succeeded += succeeded;
    char detail[96];
    std::snprintf(detail, sizeof(detail), "%lld jobs in process in %.1f ms", static_cast<long long>(succeeded),
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (succeeded > 0 && on_event) {
      // The counts moved by the batch where every job succeeded; read again after a failure.
      if (succeeded == static_cast<int64_t>(batch->size()) && theory_counts) {
        theory_counts->by_state["pending"] -= succeeded;
        theory_counts->by_state["succeeded"] += succeeded;
      } else {
        Result<std::optional<GridSummary>> now = store.grid_summary(grid.name);
        theory_counts = now.ok() ? *now : std::nullopt;
      }
      emit({EmbeddedEvent::kFinished, "(batch)", (*batch)[0].lease.kind, "succeeded", detail},
           theory_counts ? &*theory_counts : nullptr);
    }
    return true;
  };
  if (options.run_in_process) {
    if (on_event) {
      Result<std::optional<GridSummary>> counts = store.grid_summary(grid.name);
      if (counts.ok()) theory_counts = *counts;
    }
    while (!stop.load()) {
      Result<bool> more = run_theory_batch();
      if (!more.ok()) return more.error();
      if (!*more) break;
    }
  }

  auto stop_all = [&]() -> Status {
    for (auto& slot : slots) {
      terminate_process(slot.pid, 2000);
      GB_RETURN_IF_ERROR(store.release(slot.lease.run_id, owner));
    }
    slots.clear();
    return Status::Ok();
  };

  // Memory is not limited here: the jobs run on this machine, and one that does not
  // fit ends oom.
  DeviceCapacity capacity;
  capacity.add_device(options.backend, std::numeric_limits<double>::max());
  auto is_timed = [](const std::string& kind) {
    const engine::JobKind* k = engine::find_job_kind(kind);
    return k != nullptr && k->timed;
  };
  bool hold_for_timed = false;
  bool exhausted = false;
  while (true) {
    if (stop.load()) {
      GB_RETURN_IF_ERROR(stop_all());
      summary.interrupted = true;
      break;
    }
    // 1. Fill free slots with new leases. A timed job holds the machine alone:
    // nothing starts beside one, and one leased while others run is given back
    // (a `released` run, no attempt spent) until they have finished.
    if (slots.empty()) hold_for_timed = false;
    while (!exhausted && !hold_for_timed && static_cast<int>(slots.size()) < options.slots && !stop.load()) {
      if (std::any_of(slots.begin(), slots.end(), [&](const Slot& s) { return is_timed(s.lease.kind); })) break;
      Result<std::optional<Lease>> lease = store.lease_next(owner, options.lease_ms, grid.name, &capacity);
      if (!lease.ok()) {
        (void)stop_all();
        return lease.error();
      }
      if (!lease->has_value()) {
        exhausted = true;
        break;
      }
      if (is_timed((*lease)->kind) && !slots.empty()) {
        if (Status st = store.release((*lease)->run_id, owner); !st.ok()) {
          (void)stop_all();
          return st.error();
        }
        hold_for_timed = true;
        break;
      }
      if (Status st = start(**lease); !st.ok()) {
        (void)stop_all();
        return st.error();
      }
    }
    // 2. Reap finished children, renew the leases of the others.
    auto now = std::chrono::steady_clock::now();
    for (size_t i = 0; i < slots.size();) {
      Slot& slot = slots[i];
      std::optional<ExitInfo> exit = poll_process(slot.pid);
      bool timed_out = false;
      if (!exit && options.job_timeout_s > 0 &&
          now - slot.started > std::chrono::duration<double>(options.job_timeout_s)) {
        exit = terminate_process(slot.pid, 2000);
        timed_out = true;
      }
      if (exit) {
        Slot done = slot;
        slots.erase(slots.begin() + static_cast<long>(i));
        if (Status st = finish(done, *exit, timed_out); !st.ok()) {
          (void)stop_all();
          return st.error();
        }
        exhausted = false;  // a failed job may be pending again
        continue;
      }
      if (now - slot.renewed > std::chrono::milliseconds(options.lease_ms / 3)) {
        if (Status st = store.renew_lease(slot.lease.run_id, owner, options.lease_ms); !st.ok()) {
          (void)stop_all();
          return st.error();
        }
        slot.renewed = now;
      }
      ++i;
    }
    // 3. Done when nothing runs here and nothing of the grid is unfinished elsewhere.
    if (slots.empty() && exhausted) {
      // A job whose dependency ended without success (before this run, or with
      // another grid) ends invalid, as it would have when its dependency ended.
      Result<std::vector<DependencyWait>> stranded = store.end_stranded_dependents(grid.name);
      if (!stranded.ok()) return stranded.error();
      for (const DependencyWait& w : *stranded)
        emit({EmbeddedEvent::kFinished, w.hash, w.kind, "invalid",
              "its dependency " + w.dep_kind + " job " + w.dep_hash + " ended " + std::string(state_name(w.dep_state))});
      // Pending jobs of another backend (--backend) are not waited for, nor those
      // that wait for one of them (a dependency this process does not run).
      Result<std::vector<DependencyWait>> waits = store.dependency_waits(grid.name);
      if (!waits.ok()) return waits.error();
      summary.waiting.clear();
      std::set<std::string> not_here;
      for (const DependencyWait& w : *waits)
        if (w.dep_state == JobState::kPending &&
            !capacity.can_run(w.dep_req_device, static_cast<double>(w.dep_req_memory_bytes))) {
          not_here.insert(w.hash);
          summary.waiting.push_back(w);
        }
      Result<std::vector<StoredJob>> jobs = store.grid_jobs(grid.name, /*parse_params=*/false);
      if (!jobs.ok()) return jobs.error();
      int64_t unfinished = 0;
      for (const StoredJob& j : *jobs)
        if (!is_terminal(j.state) &&
            !(j.state == JobState::kPending &&
              (!capacity.can_run(j.req_device, static_cast<double>(j.req_memory_bytes)) || not_here.count(j.hash))))
          ++unfinished;
      if (unfinished == 0) break;
      // Jobs leased by another process: wait for them, or for their leases to expire.
      GB_RETURN_IF_ERROR(store.expire_leases(now_ms()));
      GB_RETURN_IF_ERROR(reclaim_dead_local_owners(store));
      exhausted = false;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(slots.empty() ? 0 : 5));
  }
  Result<std::optional<GridSummary>> s = store.grid_summary(grid.name);
  if (s.ok() && s->has_value()) summary.final_state = **s;
  return summary;
}

}  // namespace gb::coord

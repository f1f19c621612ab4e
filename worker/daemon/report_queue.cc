// The report queue: finished runs whose CompleteJob (succeeded, with the metrics and
// series of RESULT.json) or FailJob (failed / oom / timeout, with the error) is sent
// until the coordinator accepts it. Each report has its own backoff; one that keeps
// failing with errors other than unavailability is given up after 10, and one the
// coordinator refuses is discarded (the lease then expires and the job runs again).
// Completions due together (runs that finished in the same tick) go in one
// CompleteJobs call, one transaction on the coordinator, each answered on its own;
// a coordinator without that rpc (UNIMPLEMENTED) gets a CompleteJob each from then
// on. A succeeded run's directory is removed once accepted. Not here: how a run ended
// (job_children.cc) and the rpc plumbing (coordinator_client.cc).
#include "worker/daemon/worker_daemon_impl.h"

#include <algorithm>

namespace gb::worker {

uint64_t WorkerDaemon::Impl::next_seed() { return o.seed ? o.seed + 100 + (++seed_counter) : 0; }

void WorkerDaemon::Impl::add_complete_report(const Child& ch, const JobResult& result) {
  Report rep{ch.run_id, ch.hash, Outcome::kSucceeded, {}, {}, ch.dir, false, Clock::now(),
             Backoff(100, 5000, next_seed()), 0};
  pb::CompleteJobRequest& c = rep.complete;
  c.set_worker_id(worker_id);
  c.set_worker_name(name);
  c.set_run_id(ch.run_id);
  for (const auto& m : result.output.metrics) {
    pb::Metric* pm = c.add_metrics();
    pm->set_name(m.name);
    if (m.value) pm->set_value(*m.value);
    pm->set_unit(m.unit);
    pm->set_text(m.text);
  }
  for (const auto& sr : result.output.series) {
    pb::Series* ps = c.add_series();
    ps->set_name(sr.name);
    ps->set_x_unit(sr.x_unit);
    ps->set_y_unit(sr.y_unit);
    for (const auto& p : sr.points) {
      ps->add_x(p.x);
      ps->add_y(p.y);
    }
  }
  const Json& dev = result.output.device;
  c.set_device_json((dev.is_object() && !dev.empty()) ? dev.dump() : device.to_json().dump());
  c.set_engine_version(result.engine_version.empty() ? engine_version() : result.engine_version);
  c.set_wall_ms(result.wall_ms);
  reports.insert_or_assign(ch.run_id, std::move(rep));
}

void WorkerDaemon::Impl::add_fail_report(int64_t run_id, const std::string& hash, Outcome::Kind kind,
                                         const std::string& error, const fs::path& dir) {
  Report rep{run_id, hash, kind, {}, {}, dir, false, Clock::now(), Backoff(100, 5000, next_seed()), 0};
  rep.fail.set_worker_id(worker_id);
  rep.fail.set_worker_name(name);
  rep.fail.set_run_id(run_id);
  rep.fail.set_outcome(std::string(outcome_name(kind)));
  rep.fail.set_error(error);
  reports.insert_or_assign(run_id, std::move(rep));
}

void WorkerDaemon::Impl::send_due_reports() {
  const auto now = Clock::now();
  std::vector<Report*> completions;
  for (auto& [id, rep] : reports) {
    if (rep.in_flight || now < rep.next_try) continue;
    if (rep.kind == Outcome::kSucceeded && !complete_jobs_unimplemented) {
      completions.push_back(&rep);
    } else {
      send_report(rep);
    }
  }
  if (completions.size() == 1) send_report(*completions.front());
  for (size_t i = 0; completions.size() > 1 && i < completions.size(); i += kMaxCompletionsPerReport) {
    send_completions({completions.begin() + static_cast<std::ptrdiff_t>(i),
                      completions.begin() + static_cast<std::ptrdiff_t>(
                                                std::min(completions.size(), i + kMaxCompletionsPerReport))});
  }
}

// One CompleteJobs call for several due completions; each result is taken as the
// answer to its own CompleteJob would be.
void WorkerDaemon::Impl::send_completions(const std::vector<Report*>& batch) {
  pb::CompleteJobsRequest req;
  req.set_worker_id(worker_id);
  req.set_worker_name(name);
  std::vector<int64_t> run_ids;
  for (Report* rep : batch) {
    rep->in_flight = true;
    *req.add_completions() = rep->complete;
    run_ids.push_back(rep->run_id);
  }
  rpc.call<pb::CompleteJobsReply>(
      o.rpc_timeout_ms,
      [&, req](grpc::ClientContext* ctx) { return rpc.stub()->PrepareAsyncCompleteJobs(ctx, req, rpc.cq()); },
      [this, run_ids](const grpc::Status& s, const pb::CompleteJobsReply& r) {
        if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
          // An older coordinator: these and later completions go one by one, now.
          complete_jobs_unimplemented = true;
          for (int64_t run_id : run_ids) {
            auto it = reports.find(run_id);
            if (it == reports.end()) continue;
            it->second.in_flight = false;
            it->second.next_try = Clock::now();
          }
          return;
        }
        for (size_t i = 0; i < run_ids.size(); ++i) {
          if (!s.ok()) {
            on_reported(run_ids[i], s, "");
            continue;
          }
          // A reply without this run's result (it should not happen): retried.
          grpc::Status each(grpc::StatusCode::INTERNAL, "CompleteJobs: no result for this run");
          bool duplicate = false;
          for (const pb::CompleteJobResult& res : r.results()) {
            if (res.run_id() != run_ids[i]) continue;
            each = grpc::Status(static_cast<grpc::StatusCode>(res.code()), res.error());
            duplicate = res.duplicate();
            break;
          }
          on_reported(run_ids[i], each, duplicate ? " (duplicate)" : "");
        }
      });
}

// Last word on every unreported run, one try each (1 s), so that its job need not
// wait for lease expiry; without a coordinator the leases expire.
void WorkerDaemon::Impl::send_last_reports() {
  stopping = true;
  for (auto& [id, rep] : reports) send_report(rep);
}

// Back after an absence: every report is retried at once, its backoff reset.
void WorkerDaemon::Impl::retry_reports_now() {
  for (auto& [id, rep] : reports) {
    rep.next_try = Clock::now();
    rep.backoff.reset();
  }
}

void WorkerDaemon::Impl::log_unreported() const {
  for (auto& [id, rep] : reports) {
    log("run " + std::to_string(id) + " (" + rep.hash + ") not reported: " + std::string(outcome_name(rep.kind)));
  }
}

void WorkerDaemon::Impl::send_report(Report& rep) {
  if (stopping && rep.in_flight) return;
  rep.in_flight = true;
  const int64_t run_id = rep.run_id;
  const int timeout = stopping ? 1000 : o.rpc_timeout_ms;
  if (rep.kind == Outcome::kSucceeded) {
    pb::CompleteJobRequest req = rep.complete;
    req.set_worker_id(worker_id);
    rpc.call<pb::CompleteJobReply>(
        timeout, [&, req](grpc::ClientContext* ctx) { return rpc.stub()->PrepareAsyncCompleteJob(ctx, req, rpc.cq()); },
        [this, run_id](const grpc::Status& s, const pb::CompleteJobReply& r) {
          on_reported(run_id, s, r.duplicate() ? " (duplicate)" : "");
        });
  } else {
    pb::FailJobRequest req = rep.fail;
    req.set_worker_id(worker_id);
    rpc.call<pb::FailJobReply>(
        timeout, [&, req](grpc::ClientContext* ctx) { return rpc.stub()->PrepareAsyncFailJob(ctx, req, rpc.cq()); },
        [this, run_id](const grpc::Status& s, const pb::FailJobReply& r) {
          on_reported(run_id, s, r.job_state().empty() ? "" : "; the job is " + r.job_state());
        });
  }
}

void WorkerDaemon::Impl::on_reported(int64_t run_id, const grpc::Status& s, const std::string& detail) {
  auto it = reports.find(run_id);
  if (it == reports.end()) return;
  Report& rep = it->second;
  rep.in_flight = false;
  const std::string what = "run " + std::to_string(run_id) + " (" + rep.hash + ") " +
                           std::string(outcome_name(rep.kind));
  std::error_code ec;
  switch (classify_rpc(s)) {
    case RpcClass::kOk:
      coordinator_answered();
      log("reported " + what + detail);
      if (rep.kind == Outcome::kSucceeded) fs::remove_all(rep.dir, ec);
      reports.erase(it);
      return;
    case RpcClass::kTransient:
      if (stopping) return;
      if (is_unavailable(s)) {
        coordinator_away(s);
      } else if (++rep.other_errors >= 10) {
        log("giving up reporting " + what + " after 10 errors (last: " + status_text(s) +
            "); the lease will expire and the job run again");
        reports.erase(it);
        return;
      }
      rep.next_try = Clock::now() + std::chrono::milliseconds(rep.backoff.next_ms());
      return;
    case RpcClass::kAuth:
      set_fatal("a report", s);
      return;
    case RpcClass::kRefused:
      coordinator_answered();
      log("coordinator refused the report of " + what + " (" + status_text(s) + "); discarded");
      reports.erase(it);
      return;
  }
}

}  // namespace gb::worker

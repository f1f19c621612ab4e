// The worker's rpcs to the coordinator and what each answer does: RegisterWorker
// (again after any absence, with backoff), LeaseJob (a long-poll), RenewLease (for
// each running child, with its progress), Drain; and the state of the connection
// (away, back, a refused token). Not here: the plumbing under them
// (coordinator_client.cc), the CompleteJob/FailJob of finished runs
// (report_queue.cc), what a child does (job_children.cc).
#include <unistd.h>

#include <algorithm>

#include "engine/jobs/job_kinds.h"
#include "worker/daemon/worker_daemon_impl.h"

namespace gb::worker {

void WorkerDaemon::Impl::talk_to_coordinator() {
  const auto now = Clock::now();
  if (!registered && !reg_in_flight && now >= next_register) send_register();
  if (draining && !drain_sent && !drain_in_flight && registered) send_drain();
  if (registered && !draining && !lease_in_flight && !held && !timed_child_running() &&
      static_cast<int>(children.size()) < o.slots && now >= next_lease) {
    send_lease();
  }
}

namespace {
bool is_timed(const std::string& kind) {
  const engine::JobKind* k = engine::find_job_kind(kind);
  return k != nullptr && k->timed;
}
}  // namespace

bool WorkerDaemon::Impl::timed_child_running() const {
  return std::any_of(children.begin(), children.end(), [](const auto& c) { return is_timed(c.second.kind); });
}

void WorkerDaemon::Impl::shutdown_calls(int wait_ms) {
  stopping = true;
  rpc.shutdown(wait_ms);
}

// An rpc found the coordinator away: stop leasing until registered again.
void WorkerDaemon::Impl::coordinator_away(const grpc::Status& s) {
  if (registered || !away_logged) {
    log("coordinator " + o.coordinator + " unavailable (" + status_text(s) +
        "); reconnecting with backoff, children keep running");
    away_logged = true;
  }
  if (registered) {
    registered = false;
    next_register = Clock::now() + std::chrono::milliseconds(reg_backoff.next_ms());
  }
}

// An rpc went through while the worker counts itself away: the coordinator is back,
// so register now rather than when the backoff says.
void WorkerDaemon::Impl::coordinator_answered() {
  if (!registered && !reg_in_flight) next_register = Clock::now();
}

void WorkerDaemon::Impl::set_fatal(const std::string& what, const grpc::Status& s) {
  if (fatal) return;
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED || s.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    fatal = "coordinator " + o.coordinator + " refused " + what + " (" + status_text(s) +
            "): check the token (--token-file or GRIDBENCH_TOKEN)" +
            (o.tls_ca.empty() ? "" : " and the TLS client certificate");
  } else {
    fatal = "coordinator " + o.coordinator + " refused " + what + " (" + status_text(s) + ")";
    // Its name is another live worker's (on another host): exit 2, as for --name.
    if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) identity_in_use = true;
  }
}

// ---- registration ----

void WorkerDaemon::Impl::send_register() {
  if (stopping) return;
  reg_in_flight = true;
  pb::RegisterWorkerRequest req;
  req.set_name(name);
  req.set_slots(o.slots);
  req.set_engine_version(engine_version());
  req.set_instance(host_name() + " " + std::to_string(getpid()));
  pb::Device* d = req.add_devices();
  d->set_kind(device.kind);
  d->set_index(device.index);
  d->set_name(device.name);
  d->set_memory_bytes(device.memory_bytes);
  d->set_compute_capability(device.compute_capability);
  d->set_copy_bandwidth_bytes_per_s(device.copy_bandwidth_bytes_per_s);
  d->set_matmul_flops_per_s(device.matmul_flops_per_s);
  rpc.call<pb::RegisterWorkerReply>(
      o.rpc_timeout_ms,
      [&, req](grpc::ClientContext* ctx) { return rpc.stub()->PrepareAsyncRegisterWorker(ctx, req, rpc.cq()); },
      [this](const grpc::Status& s, const pb::RegisterWorkerReply& r) { on_registered(s, r); });
}

void WorkerDaemon::Impl::on_registered(const grpc::Status& s, const pb::RegisterWorkerReply& r) {
  reg_in_flight = false;
  if (stopping) return;
  switch (classify_rpc(s)) {
    case RpcClass::kOk: {
      registered = true;
      worker_id = r.worker_id();
      if (r.lease_ms() > 0) lease_ms = r.lease_ms();
      log(std::string(ever_registered ? "registered again" : "registered") + " with " + o.coordinator +
          " as worker " + std::to_string(worker_id) + " (lease " + std::to_string(lease_ms) + " ms, device " +
          device.kind + (device.kind == "cuda" ? ":" + std::to_string(device.index) : "") + " \"" + device.name +
          "\", " + std::to_string(o.slots) + " slot" + (o.slots == 1 ? "" : "s") + ")");
      ever_registered = true;
      away_logged = false;
      if (draining) drain_sent = false;  // a restarted coordinator must hear it again
      reg_backoff.reset();
      lease_backoff.reset();
      next_lease = Clock::now();
      // Back after an absence: renew every lease and retry every report now.
      renew_leases_now();
      retry_reports_now();
      return;
    }
    case RpcClass::kTransient: {
      const int delay = reg_backoff.next_ms();
      if (!away_logged || reg_backoff.attempts() % 20 == 0) {
        log("cannot register with " + o.coordinator + " (" + status_text(s) + "); retrying in " +
            std::to_string(delay) + " ms");
        away_logged = true;
      }
      next_register = Clock::now() + std::chrono::milliseconds(delay);
      return;
    }
    case RpcClass::kAuth:
    case RpcClass::kRefused: set_fatal("the registration", s); return;
  }
}

// ---- leasing ----

void WorkerDaemon::Impl::send_lease() {
  if (stopping) return;
  lease_in_flight = true;
  pb::LeaseJobRequest req;
  req.set_worker_id(worker_id);
  req.set_worker_name(name);
  req.set_wait_ms(o.lease_wait_ms);
  // Every free slot in one call: the coordinator leases up to that many at once.
  req.set_max_jobs(std::max(1, o.slots - static_cast<int>(children.size())));
  const auto sent = Clock::now();
  lease_call = rpc.call<pb::LeaseJobReply>(
      o.lease_wait_ms + o.rpc_timeout_ms,
      [&, req](grpc::ClientContext* ctx) { return rpc.stub()->PrepareAsyncLeaseJob(ctx, req, rpc.cq()); },
      [this, sent](const grpc::Status& s, const pb::LeaseJobReply& r) { on_lease(s, r, sent); });
}

void WorkerDaemon::Impl::on_lease(const grpc::Status& s, const pb::LeaseJobReply& r, Clock::time_point sent) {
  lease_in_flight = false;
  lease_call = nullptr;
  if (stopping) {
    if (s.ok() && r.has_job()) {
      log("run " + std::to_string(r.run_id()) + " leased while stopping: not started; its lease will expire");
      for (const pb::LeaseJobReply& more : r.more())
        log("run " + std::to_string(more.run_id()) + " leased while stopping: not started; its lease will expire");
    }
    return;
  }
  switch (classify_rpc(s)) {
    case RpcClass::kOk:
      lease_backoff.reset();
      if (r.has_job() && is_timed(r.job().kind()) && !children.empty()) {
        log("run " + std::to_string(r.run_id()) + " (" + r.job().hash() + ") is a timed " + r.job().kind() +
            " job: it waits for " + std::to_string(children.size()) + " running job(s) to finish, then runs alone");
        held = Held{r, Clock::now(), false};
      } else if (r.has_job()) {
        start_child(r);
        for (const pb::LeaseJobReply& more : r.more()) start_child(more);
      } else if (Clock::now() - sent < std::chrono::milliseconds(o.lease_wait_ms / 2)) {
        next_lease = Clock::now() + std::chrono::milliseconds(200);  // answered early: do not spin
      }
      return;
    case RpcClass::kTransient:
      if (is_unavailable(s)) {
        coordinator_away(s);
      } else {
        log("LeaseJob failed (" + status_text(s) + "); retrying");
        next_lease = Clock::now() + std::chrono::milliseconds(lease_backoff.next_ms());
      }
      return;
    case RpcClass::kAuth: set_fatal("a lease request", s); return;
    case RpcClass::kRefused:
      if (s.error_code() == grpc::StatusCode::NOT_FOUND || s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        log("LeaseJob refused (" + status_text(s) + "); registering again");
        registered = false;
        next_register = Clock::now() + std::chrono::milliseconds(reg_backoff.next_ms());
      } else {
        log("LeaseJob refused (" + status_text(s) + "); retrying with backoff");
        next_lease = Clock::now() + std::chrono::milliseconds(lease_backoff.next_ms());
      }
      return;
  }
}

// ---- renewing the lease of a running child ----

void WorkerDaemon::Impl::send_renew(Child& ch) {
  if (stopping) return;
  ch.renew_in_flight = true;
  ch.next_renew = Clock::now() + std::chrono::milliseconds(std::max<int64_t>(1, ch.lease_ms / 3));
  pb::RenewLeaseRequest req;
  req.set_worker_id(worker_id);
  req.set_worker_name(name);
  req.set_run_id(ch.run_id);
  req.set_progress(ch.progress.fraction);
  req.set_message(ch.progress.message);
  req.set_running(true);
  const int64_t run_id = ch.run_id;
  rpc.call<pb::RenewLeaseReply>(
      o.rpc_timeout_ms,
      [&, req](grpc::ClientContext* ctx) { return rpc.stub()->PrepareAsyncRenewLease(ctx, req, rpc.cq()); },
      [this, run_id](const grpc::Status& s, const pb::RenewLeaseReply& r) { on_renewed(run_id, s, r); });
}

void WorkerDaemon::Impl::on_renewed(int64_t run_id, const grpc::Status& s, const pb::RenewLeaseReply& r) {
  auto it = children.find(run_id);
  if (it == children.end() || stopping) return;  // it ended meanwhile; its report says the rest
  Child& ch = it->second;
  ch.renew_in_flight = false;
  switch (classify_rpc(s)) {
    case RpcClass::kOk:
      coordinator_answered();
      if (r.cancelled()) {
        log("run " + std::to_string(run_id) + " (" + ch.hash + ") cancelled by the coordinator: stopping pid " +
            std::to_string(ch.pid));
        begin_kill(ch, KillReason::kCancelled);
      }
      return;
    case RpcClass::kTransient:
      if (is_unavailable(s)) coordinator_away(s);
      // Retry soon (its lease may be running out), but no faster than the interval.
      ch.next_renew = std::min(ch.next_renew, Clock::now() + std::chrono::milliseconds(1000));
      return;
    case RpcClass::kAuth: set_fatal("a lease renewal", s); return;
    case RpcClass::kRefused:
      coordinator_answered();
      log("lease of run " + std::to_string(run_id) + " (" + ch.hash + ") lost (" + status_text(s) +
          "): stopping pid " + std::to_string(ch.pid));
      begin_kill(ch, KillReason::kLeaseLost);
      return;
  }
}

// ---- a timed job waiting to run alone ----

void WorkerDaemon::Impl::tick_held() {
  if (!held) return;
  if (children.empty()) {
    pb::LeaseJobReply r = std::move(held->reply);
    held.reset();
    start_child(r);
    return;
  }
  if (!held->renew_in_flight && Clock::now() >= held->next_renew) send_held_renew();
}

void WorkerDaemon::Impl::send_held_renew() {
  if (stopping) return;
  const int64_t ms = held->reply.lease_ms() > 0 ? held->reply.lease_ms() : lease_ms;
  held->renew_in_flight = true;
  held->next_renew = Clock::now() + std::chrono::milliseconds(std::max<int64_t>(1, ms / 3));
  pb::RenewLeaseRequest req;
  req.set_worker_id(worker_id);
  req.set_worker_name(name);
  req.set_run_id(held->reply.run_id());
  req.set_message("waiting for the running jobs to finish (a timed job runs alone)");
  req.set_running(false);
  const int64_t run_id = held->reply.run_id();
  rpc.call<pb::RenewLeaseReply>(
      o.rpc_timeout_ms,
      [&, req](grpc::ClientContext* ctx) { return rpc.stub()->PrepareAsyncRenewLease(ctx, req, rpc.cq()); },
      [this, run_id](const grpc::Status& s, const pb::RenewLeaseReply& r) { on_held_renewed(run_id, s, r); });
}

void WorkerDaemon::Impl::on_held_renewed(int64_t run_id, const grpc::Status& s, const pb::RenewLeaseReply& r) {
  if (!held || held->reply.run_id() != run_id || stopping) return;  // started meanwhile: its child renews
  held->renew_in_flight = false;
  const std::string run = "run " + std::to_string(run_id) + " (" + held->reply.job().hash() + ")";
  switch (classify_rpc(s)) {
    case RpcClass::kOk:
      coordinator_answered();
      if (r.cancelled()) {
        log(run + " cancelled by the coordinator while it waited: not started");
        held.reset();
      }
      return;
    case RpcClass::kTransient:
      if (is_unavailable(s)) coordinator_away(s);
      held->next_renew = std::min(held->next_renew, Clock::now() + std::chrono::milliseconds(1000));
      return;
    case RpcClass::kAuth: set_fatal("a lease renewal", s); return;
    case RpcClass::kRefused:
      coordinator_answered();
      log("lease of " + run + " lost while it waited (" + status_text(s) + "): not started");
      held.reset();
      return;
  }
}

// ---- draining ----

void WorkerDaemon::Impl::send_drain() {
  if (stopping) return;
  drain_in_flight = true;
  drain_sent = true;
  pb::DrainRequest req;
  req.set_worker_id(worker_id);
  req.set_worker_name(name);
  rpc.call<pb::DrainReply>(
      o.rpc_timeout_ms,
      [&, req](grpc::ClientContext* ctx) { return rpc.stub()->PrepareAsyncDrain(ctx, req, rpc.cq()); },
      [this](const grpc::Status& s, const pb::DrainReply&) {
        drain_in_flight = false;
        if (!s.ok()) log("Drain failed (" + status_text(s) + "); draining anyway");
      });
}

}  // namespace gb::worker

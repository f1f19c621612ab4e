// The worker daemon's state and its steps: WorkerDaemon::Impl (private to gb_worker;
// the interface is worker_daemon.h). One struct, as the steps share the state; its
// member functions are defined by concern:
//   worker_daemon.cc    setup, the top loop, stopping
//   worker_rpcs.cc      registering, leasing, renewing, draining, and each answer
//   job_children.cc     the child gridbench-job processes
//   report_queue.cc     finished runs whose CompleteJob/FailJob waits to be accepted
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/subprocess.h"
#include "worker/daemon/coordinator_client.h"
#include "worker/daemon/job_children.h"
#include "worker/daemon/report_queue.h"
#include "worker/daemon/worker_daemon.h"
#include "worker/daemon/worker_daemon_util.h"

namespace gb::worker {

namespace pb = gridbench::v1;

struct WorkerDaemon::Impl {
  WorkerOptions o;
  std::string name;
  std::string job_binary;
  fs::path work_dir;
  fs::path cache_dir;  // the children's quantized-model cache (GRIDBENCH_QUANT_CACHE)
  WorkerIdentity identity;     // holds the name and the work dir while the daemon lives
  bool identity_in_use = false;  // setup failed: the name or work dir is another worker's
  DeviceReport device;

  CoordinatorClient rpc;
  bool stopping = false;  // no new rpcs; in-flight ones are being cancelled

  // Registration and connection.
  bool registered = false;
  bool ever_registered = false;
  bool reg_in_flight = false;
  int64_t worker_id = 0;
  int64_t lease_ms = 10000;
  Clock::time_point next_register{};
  Backoff reg_backoff;
  bool away_logged = false;

  // Leasing.
  bool lease_in_flight = false;
  CoordinatorClient::CallBase* lease_call = nullptr;
  Clock::time_point next_lease{};
  Backoff lease_backoff;

  // A timed job (engine::JobKind::timed: speed, decode_curve, context_search) holds
  // the device alone: one leased while other children run waits here, unstarted,
  // its lease renewed (running = false), until they have finished; nothing is
  // leased while it waits or runs.
  struct Held {
    pb::LeaseJobReply reply;
    Clock::time_point next_renew;
    bool renew_in_flight = false;
  };
  std::optional<Held> held;
  // Drain.
  bool draining = false;
  bool drain_in_flight = false;
  bool drain_sent = false;

  std::optional<std::string> fatal;
  std::map<int64_t, Child> children;   // by run id
  std::map<int64_t, Report> reports;   // by run id
  // The coordinator answered CompleteJobs UNIMPLEMENTED (older than that rpc):
  // completions go one CompleteJob each.
  bool complete_jobs_unimplemented = false;
  static constexpr size_t kMaxCompletionsPerReport = 64;  // per CompleteJobs call (the coordinator takes 256)
  uint64_t seed_counter = 0;

  explicit Impl(WorkerOptions opts);

  void log(const std::string& text) const { log_line(name.empty() ? "?" : name, text); }

  // ---- worker_daemon.cc: setup, the top loop, stopping ----
  Status setup();
  int run(const std::atomic<int>& signals);
  void begin_drain();
  bool drained() const;
  int exit_drained();
  int stop_now(int code);

  // ---- worker_rpcs.cc: the rpcs but the reports, and their backoff ----
  void talk_to_coordinator();  // registers, drains or leases, whichever is due
  void shutdown_calls(int wait_ms);
  void coordinator_away(const grpc::Status& s);
  void coordinator_answered();
  void set_fatal(const std::string& what, const grpc::Status& s);
  void send_register();
  void on_registered(const grpc::Status& s, const pb::RegisterWorkerReply& r);
  void send_lease();
  void on_lease(const grpc::Status& s, const pb::LeaseJobReply& r, Clock::time_point sent);
  void send_renew(Child& ch);
  void on_renewed(int64_t run_id, const grpc::Status& s, const pb::RenewLeaseReply& r);
  bool timed_child_running() const;
  void tick_held();  // starts the held timed job once it is alone, renews its lease meanwhile
  void send_held_renew();
  void on_held_renewed(int64_t run_id, const grpc::Status& s, const pb::RenewLeaseReply& r);
  void send_drain();

  // ---- job_children.cc: the children ----
  void kill_orphans();
  void start_child(const pb::LeaseJobReply& r);
  void tick_children();  // exits, timeouts, kills, renewals that are due
  void begin_kill(Child& ch, KillReason why);
  void on_child_exit(Child& ch, const ExitInfo& exit);
  void renew_leases_now();
  void stop_children(bool report_failed);

  // ---- report_queue.cc: the reports ----
  uint64_t next_seed();
  void add_complete_report(const Child& ch, const JobResult& result);
  void add_fail_report(int64_t run_id, const std::string& hash, Outcome::Kind kind, const std::string& error,
                       const fs::path& dir);
  void send_due_reports();
  void send_last_reports();
  void retry_reports_now();
  void log_unreported() const;
  void send_report(Report& rep);
  void send_completions(const std::vector<Report*>& batch);
  void on_reported(int64_t run_id, const grpc::Status& s, const std::string& detail);
};

}  // namespace gb::worker

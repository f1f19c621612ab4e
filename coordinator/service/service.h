// The gRPC Coordinator service (proto/gridbench.proto) on top of the JobStore, and
// the server that gridbench-coordinator runs. All state is in the store; the
// service keeps in memory only what it can rebuild from it (registered workers'
// capacities and last-seen times) plus the condition variables that wake
// long-polling LeaseJob calls and WatchGrid streams.
//
// Threads: gRPC's synchronous server runs each rpc on a thread of its pool; every
// rpc does short store transactions (JobStore serializes them on one connection and
// group-commits concurrent lease writes: an rpc is answered after its commit).
// A sweeper thread expires leases every lease_ms / 4 and marks workers lost after
// 3 x lease_ms without a call, whatever their state (a drained worker that exited
// too), counting from the coordinator's start for workers it has not heard from.
#pragma once

#include <grpcpp/server.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/status.h"
#include "coordinator/service/auth.h"
#include "coordinator/service/http_endpoint.h"
#include "coordinator/service/metrics.h"
#include "coordinator/service/theory_thread.h"
#include "coordinator/service/db_lock.h"
#include "coordinator/grid/grid.h"
#include "coordinator/store/job_store.h"
#include "proto/gridbench.grpc.pb.h"

namespace gb::coord {

namespace pb = ::gridbench::v1;

// The most jobs one LeaseJob call leases (LeaseJobRequest.max_jobs).
inline constexpr int kMaxJobsPerLease = 64;
// The most completions one CompleteJobs call records.
inline constexpr int kMaxCompletionsPerCall = 256;

struct ServiceOptions {
  int64_t lease_ms = 30000;     // lease duration handed to workers; they renew every lease_ms / 3
  int max_attempts = 3;         // default for SubmitGrid when the request says 0
  double job_timeout_s = 0;     // LeaseJobReply.timeout_s; 0: none
  int64_t max_wait_ms = 60000;  // upper bound of a LeaseJob long-poll
  int64_t watch_heartbeat_ms = 5000;  // WatchGrid: the status again after this long
                                      // without a change (a request's heartbeat_ms wins)
  // Theory-only jobs computed in the coordinator, this many per transaction
  // (theory_thread.h); 0: none (workers lease them like any job).
  int theory_batch_size = 1000;
  std::string token;            // "": no authentication
  // Placement requirement per job; empty: the job kind's (engine::job_requirement).
  // Tests set it to give jobs requirements no real kind has yet.
  RequirementFn requirement;
  // Where the service logs (worker registered, lost, leases expired, errors); empty:
  // nowhere.
  std::function<void(const std::string&)> log;
};

class CoordinatorService final : public pb::Coordinator::Service {
 public:
  CoordinatorService(JobStore& store, ServiceOptions options);
  ~CoordinatorService() override;
  CoordinatorService(const CoordinatorService&) = delete;
  CoordinatorService& operator=(const CoordinatorService&) = delete;

  // Loads the registered workers, gives every current lease at least lease_ms more
  // (so that live workers can renew after a coordinator restart), and starts the
  // sweeper thread and the theory thread (its own leases from before a restart
  // returned to pending, every grid queued).
  Status start();
  // Wakes every long-poll and watch (they reply at once), stops the sweeper and the
  // theory thread.
  // Idempotent; rpcs that arrive afterwards still work but do not wait.
  void shutdown();
  // One pass of the sweeper's work now: expire leases, mark silent workers lost,
  // write workers' states. For tests.
  void sweep();

  const ServiceOptions& options() const { return options_; }

  // The counters and histogram the rpcs update (metrics.h).
  CoordinatorMetrics& metrics() { return metrics_; }
  // One scrape: the counters with the gauges read now (jobs by grid and state from
  // the store, workers by state), in the text exposition format.
  std::string metrics_text();

  grpc::Status SubmitGrid(grpc::ServerContext* ctx, const pb::SubmitGridRequest* req,
                          pb::SubmitGridReply* reply) override;
  grpc::Status CancelGrid(grpc::ServerContext* ctx, const pb::CancelGridRequest* req,
                          pb::CancelGridReply* reply) override;
  grpc::Status ListGrids(grpc::ServerContext* ctx, const pb::ListGridsRequest* req, pb::ListGridsReply* reply) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const pb::ListJobsRequest* req, pb::ListJobsReply* reply) override;
  grpc::Status ListWorkers(grpc::ServerContext* ctx, const pb::ListWorkersRequest* req,
                           pb::ListWorkersReply* reply) override;
  grpc::Status GetResults(grpc::ServerContext* ctx, const pb::GetResultsRequest* req,
                          pb::GetResultsReply* reply) override;
  grpc::Status WatchGrid(grpc::ServerContext* ctx, const pb::WatchGridRequest* req,
                         grpc::ServerWriter<pb::GridProgress>* writer) override;
  grpc::Status RegisterWorker(grpc::ServerContext* ctx, const pb::RegisterWorkerRequest* req,
                              pb::RegisterWorkerReply* reply) override;
  grpc::Status LeaseJob(grpc::ServerContext* ctx, const pb::LeaseJobRequest* req, pb::LeaseJobReply* reply) override;
  grpc::Status RenewLease(grpc::ServerContext* ctx, const pb::RenewLeaseRequest* req,
                          pb::RenewLeaseReply* reply) override;
  grpc::Status CompleteJob(grpc::ServerContext* ctx, const pb::CompleteJobRequest* req,
                           pb::CompleteJobReply* reply) override;
  grpc::Status CompleteJobs(grpc::ServerContext* ctx, const pb::CompleteJobsRequest* req,
                            pb::CompleteJobsReply* reply) override;
  grpc::Status FailJob(grpc::ServerContext* ctx, const pb::FailJobRequest* req, pb::FailJobReply* reply) override;
  grpc::Status Drain(grpc::ServerContext* ctx, const pb::DrainRequest* req, pb::DrainReply* reply) override;

 private:
  struct WorkerEntry {
    int64_t id = 0;
    DeviceCapacity capacity;
    std::string state = "active";  // active | draining | lost
    int64_t last_seen_ms = 0;      // its last call (kept across coordinator restarts)
    std::string instance;          // "HOST PID" of the process that registered ("" unknown)
    bool dirty = false;  // state/last_seen not yet written to the store
  };

  // The worker a call names (worker_name, or worker_id when the name is empty);
  // marks it seen. "" with *status set when neither identifies one and `must_exist`.
  std::string caller(int64_t worker_id, const std::string& worker_name, bool must_exist, grpc::Status* status);
  grpc::Status completion_refused(int64_t run_id, const std::string& name, const Status& done, bool* duplicate);
  DeviceCapacity active_capacity();
  int active_workers();
  Result<int64_t> unplaceable_in(const std::string& grid);
  grpc::Status fill_status(const GridSummary& g, int64_t unplaceable, pb::GridStatus* out);
  void notify_work();   // pending jobs may have appeared: wake long-polls
  void notify_state();  // some job changed state: wake watches
  void log(const std::string& line) const;
  void sweeper_main();

  JobStore& store_;
  const ServiceOptions options_;
  const TokenAuth auth_;

  std::mutex mu_;
  std::condition_variable work_cv_;   // LeaseJob waiters
  std::condition_variable state_cv_;  // WatchGrid streams
  std::condition_variable sweep_cv_;  // the sweeper's sleep
  uint64_t work_epoch_ = 0;
  uint64_t state_epoch_ = 0;
  bool shutting_down_ = false;
  bool started_ = false;
  int64_t started_ms_ = 0;  // when start() ran: a worker is lost 3 x lease_ms after
                            // its last call or after this, whichever is later
  std::map<std::string, WorkerEntry> workers_;
  std::thread sweeper_;
  std::unique_ptr<TheoryThread> theory_;  // null: theory_batch_size 0, or not started
  CoordinatorMetrics metrics_;
};

struct ServerOptions {
  std::string listen = "127.0.0.1:7878";  // HOST:PORT ([IPV6]:PORT, unix:PATH); port 0 picks one
  std::string db_path = "gridbench.db";
  TlsFiles tls;
  bool insecure = false;                  // allow a non-loopback bind without a token
  int64_t max_message_bytes = 256 << 20;  // largest request accepted
  // WAL checkpoints on a background connection every this many ms
  // (JobStore::start_background_checkpoints); 0: SQLite's automatic checkpoints,
  // run by whichever commit crosses 1000 WAL pages.
  int checkpoint_interval_ms = 50;
  // HOST:PORT of the Prometheus endpoint (GET /metrics, HTTP); "": none, and no rpc
  // interceptor either.
  std::string metrics_listen;
  ServiceOptions service;
};

// The store, the service and a started grpc::Server (health service and server
// reflection on) listening on options.listen.
class CoordinatorServer {
 public:
  // Checks the bind policy and TLS files, probes the port (before anything is
  // created), locks the database (DbLock: one coordinator per database), opens the
  // store, starts serving. Errors: an invalid address or policy violation,
  // unreadable TLS files, a port that cannot be bound, a database another
  // coordinator serves (*db_busy set), a database that cannot be opened.
  static Result<std::unique_ptr<CoordinatorServer>> start(const ServerOptions& options, bool* db_busy = nullptr);
  ~CoordinatorServer();

  // "HOST:PORT" as bound (with the port the system chose when 0 was asked), or
  // "unix:PATH".
  const std::string& address() const { return address_; }
  int port() const { return port_; }
  // "HOST:PORT" of the metrics endpoint as bound; "" without metrics_listen.
  std::string metrics_address() const { return metrics_http_ ? metrics_http_->address() : ""; }

  // Graceful: health NOT_SERVING, the metrics endpoint stopped, long-polls and
  // watches answered, in-flight rpcs given grace_ms to finish (then cancelled), the
  // sweeper stopped. Idempotent.
  void shutdown(int grace_ms = 2000);
  // Blocks until the server has shut down.
  void wait();

  JobStore& store() { return *store_; }
  CoordinatorService& service() { return *service_; }

 private:
  CoordinatorServer() = default;
  std::unique_ptr<DbLock> db_lock_;  // destroyed last: released once the store is closed
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<CoordinatorService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpEndpoint> metrics_http_;  // after server_: destroyed first, it reads service_
  std::string address_;
  int port_ = 0;
  std::mutex shutdown_mu_;
  bool shut_down_ = false;
};

}  // namespace gb::coord

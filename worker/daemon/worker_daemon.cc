// The worker daemon (worker_daemon.h): its setup, its top loop and how it stops,
// and log_line. The loop's steps are WorkerDaemon::Impl's member functions
// (worker_daemon_impl.h), each in the file of its concern: the rpcs (worker_rpcs.cc,
// over coordinator_client.cc), the children (job_children.cc) and the report queue
// (report_queue.cc). Not here: any rpc, child or report itself.
#include "worker/daemon/worker_daemon.h"

#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sstream>
#include <vector>

#include "worker/daemon/worker_daemon_impl.h"

namespace gb::worker {

void log_line(const std::string& who, const std::string& text) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[64];
  std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(tv.tv_usec / 1000));
  std::string line = std::string(ts) + " gridbench-worker[" + who + "] " + text;
  // One line per event: newlines inside (an error's stderr tail) are shown as " | ".
  for (size_t p; (p = line.find('\n')) != std::string::npos;) line.replace(p, 1, " | ");
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

WorkerDaemon::Impl::Impl(WorkerOptions opts)
    : o(std::move(opts)), reg_backoff(100, 5000, o.seed), lease_backoff(100, 5000, o.seed ? o.seed + 1 : 0) {}

// ---- setup ----

Status WorkerDaemon::Impl::setup() {
  if (o.slots < 1) return Error{"--slots must be at least 1"};
  if (o.coordinator.empty()) return Error{"--coordinator is required"};
  if (!o.job_binary.empty()) {
    job_binary = o.job_binary;
  } else if (const char* env = std::getenv("GRIDBENCH_JOB"); env != nullptr && *env != '\0') {
    job_binary = env;
  } else {
    job_binary = self_exe_dir() + "/gridbench-job";
  }
  if (access(job_binary.c_str(), X_OK) != 0) {
    return Error{job_binary + ": cannot execute gridbench-job: " + std::strerror(errno) +
                 " (set GRIDBENCH_JOB or install it beside gridbench-worker)"};
  }
  Result<WorkerIdentity> id = claim_worker_identity(o.name, o.device, o.coordinator, o.work_dir, &identity_in_use);
  if (!id.ok()) return id.error();
  identity = std::move(*id);
  name = identity.name;
  work_dir = identity.work_dir;
  Result<DeviceReport> dev = discover_device(o.device, o.measure);
  if (!dev.ok()) return dev.error();
  device = *dev;
  if (device.kind == "cuda") {
    // The child sees exactly the worker's device (as its cuda:0), mapped through
    // an inherited CUDA_VISIBLE_DEVICES list when there is one.
    std::string visible = std::to_string(device.index);
    if (const char* env = std::getenv("CUDA_VISIBLE_DEVICES"); env != nullptr && *env != '\0') {
      std::vector<std::string> ids;
      std::stringstream ss(env);
      for (std::string id; std::getline(ss, id, ',');) ids.push_back(id);
      if (device.index < static_cast<int>(ids.size())) visible = ids[static_cast<size_t>(device.index)];
    }
    setenv("CUDA_VISIBLE_DEVICES", visible.c_str(), 1);
  }
  // The children's quantized-model cache (engine/weights/quantized_cache.h), inherited
  // through the environment as CUDA_VISIBLE_DEVICES is: a grid of jobs on one (model,
  // format) quantizes once.
  const char* inherited = std::getenv("GRIDBENCH_QUANT_CACHE");
  cache_dir = !o.cache_dir.empty() ? fs::path(o.cache_dir)
              : inherited != nullptr && *inherited != '\0' ? fs::path(inherited)
                                                           : work_dir / "quant-cache";
  setenv("GRIDBENCH_QUANT_CACHE", cache_dir.c_str(), 1);
  kill_orphans();
  return rpc.connect(o);
}

// ---- the loop ----

// Each turn: the signals, the rpcs that are due, the children, the reports; then a
// wait for the answers of the rpcs in flight (10 ms while children run, else 50 ms),
// whose callbacks run in rpc.pump().
int WorkerDaemon::Impl::run(const std::atomic<int>& signals) {
  if (Status st = setup(); !st.ok()) {
    log("error: " + st.message());
    return identity_in_use ? kWorkerUsage : kWorkerError;
  }
  log("starting: coordinator " + o.coordinator + ", device " + o.device + ", " + std::to_string(o.slots) +
      " slot" + (o.slots == 1 ? "" : "s") + ", job binary " + job_binary + ", work dir " + work_dir.string() +
      ", quantized-model cache " + cache_dir.string());
  while (true) {
    const int sig = signals.load();
    if (sig >= 2) return stop_now(kWorkerInterrupted);  // a second signal
    if (fatal) return stop_now(identity_in_use ? kWorkerUsage : kWorkerError);  // e.g. a refused token
    if (sig == 1) begin_drain();                         // the first signal
    talk_to_coordinator();  // register, Drain, lease: whichever is due
    tick_children();        // exits, timeouts, kills, lease renewals
    tick_held();            // a timed job that waits to run alone
    send_due_reports();     // CompleteJob/FailJob of finished runs, until accepted
    if (drained()) return exit_drained();
    rpc.pump(std::chrono::system_clock::now() + std::chrono::milliseconds(children.empty() ? 50 : 10));
  }
}

void WorkerDaemon::Impl::begin_drain() {
  if (draining) return;
  draining = true;
  log("draining: no new leases; waiting for " + std::to_string(children.size()) + " running job(s) and " +
      std::to_string(reports.size()) + " report(s); a second signal stops at once");
}

bool WorkerDaemon::Impl::drained() const {
  return draining && children.empty() && !held && reports.empty() && !lease_in_flight && !drain_in_flight;
}

int WorkerDaemon::Impl::exit_drained() {
  shutdown_calls(0);
  log("drained: every run reported; exiting");
  return kWorkerDrained;
}

// ---- stopping ----

// A second signal (kWorkerInterrupted) or a fatal error (kWorkerError): the
// children are killed; after a second signal they are reported failed, and every
// unreported run gets one last try.
int WorkerDaemon::Impl::stop_now(int code) {
  if (fatal) log("fatal: " + *fatal);
  if (held) log("run " + std::to_string(held->reply.run_id()) + " waited to run alone: not started; its lease will expire");
  held.reset();
  stop_children(code == kWorkerInterrupted && ever_registered);
  if (code == kWorkerInterrupted && !fatal) send_last_reports();
  shutdown_calls(code == kWorkerInterrupted ? 1500 : 0);
  log_unreported();
  log(code == kWorkerInterrupted ? "stopped (second signal)" : "exiting");
  return code;
}

WorkerDaemon::WorkerDaemon(WorkerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
WorkerDaemon::~WorkerDaemon() = default;
int WorkerDaemon::run(const std::atomic<int>& signals) { return impl_->run(signals); }

}  // namespace gb::worker

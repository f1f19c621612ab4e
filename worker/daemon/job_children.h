// A child gridbench-job as the worker daemon keeps track of it (private to
// gb_worker). Starting, polling, killing and reading back the children are
// WorkerDaemon::Impl's member functions in job_children.cc; renewing a child's lease
// is worker_rpcs.cc, reporting how it ended is report_queue.cc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "worker/daemon/worker_daemon.h"
#include "worker/daemon/worker_daemon_util.h"

namespace gb::worker {

// Why the worker is killing a child (kNone: it is not).
enum class KillReason { kNone, kCancelled, kLeaseLost, kTimeout, kStop };

struct Child {
  int64_t run_id = 0;
  std::string hash;
  std::string kind;
  int attempt = 0;
  double timeout_s = 0;
  int64_t lease_ms = 0;
  pid_t pid = 0;
  fs::path dir;
  std::string result_path;
  std::string stderr_path;
  Clock::time_point started;
  Clock::time_point next_renew;
  bool renew_in_flight = false;
  Progress progress;
  StderrFollower follower;
  KillReason kill = KillReason::kNone;
  Clock::time_point kill_deadline;
  bool sigkill_sent = false;
};

}  // namespace gb::worker

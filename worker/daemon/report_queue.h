// A finished run whose CompleteJob or FailJob waits to be accepted by the
// coordinator (private to gb_worker). Queueing, sending and retrying the reports are
// WorkerDaemon::Impl's member functions in report_queue.cc; how a run ended is
// decided in job_children.cc.
#pragma once

#include <cstdint>
#include <string>

#include "proto/gridbench.grpc.pb.h"
#include "worker/daemon/worker_daemon.h"
#include "worker/daemon/worker_daemon_util.h"

namespace gb::worker {

struct Report {
  int64_t run_id = 0;
  std::string hash;
  Outcome::Kind kind = Outcome::kFailed;
  gridbench::v1::CompleteJobRequest complete;  // kind == kSucceeded
  gridbench::v1::FailJobRequest fail;          // otherwise
  fs::path dir;
  bool in_flight = false;
  Clock::time_point next_try;
  Backoff backoff;
  int other_errors = 0;
};

}  // namespace gb::worker

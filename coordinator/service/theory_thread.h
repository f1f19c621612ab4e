// The coordinator's own computation of theory-only jobs (engine/theory/
// theory_output.h: pure arithmetic), in batches: one transaction leases up to
// `batch_size` pending theory jobs of a grid (JobStore::lease_batch, marked
// running), they are computed in this process, and one transaction records them
// (complete_batch): no child process, no lease per job, no renewal, no worker.
// TheoryThread does it for each grid submitted (and, at start, every stored grid)
// as the lease owner "coordinator" (one coordinator per database: DB.lock). Not
// here: what the jobs compute; the embedded runner's batches, which go through
// worker::run_job (coordinator/embedded_runner.cc).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "coordinator/store/job_store.h"

namespace gb::coord {

inline constexpr const char* kCoordinatorOwner = "coordinator";

struct TheoryBatchCounts {
  int64_t succeeded = 0;
  int64_t invalid = 0;  // parameters the computation refused (the registry checked them: rare)
  int64_t batches = 0;
};

// The theory-only kinds of the registry (engine::JobKind::theory_only).
std::vector<std::string> theory_kinds();

// Computes the pending theory-only jobs of grid `grid_name` as `owner`, a batch per
// transaction pair, until none is pending or `stop` is set. A store error stops it
// (the batch's leases then expire as any lease does).
Result<TheoryBatchCounts> compute_theory_jobs(JobStore& store, const std::string& grid_name,
                                              const std::string& owner, int64_t lease_ms, int batch_size,
                                              const std::atomic<bool>& stop);


class TheoryThread {
 public:
  // `on_done` runs after a grid's jobs were stored (the service wakes its watches);
  // `log` gets a line per grid computed and per error.
  TheoryThread(JobStore& store, int64_t lease_ms, int batch_size, std::function<void()> on_done,
               std::function<void(const std::string&)> log);
  ~TheoryThread();  // stop()
  TheoryThread(const TheoryThread&) = delete;
  TheoryThread& operator=(const TheoryThread&) = delete;

  // Queues a grid (once: a grid already queued is not queued twice).
  void enqueue(const std::string& grid);
  // Stops after the batch in progress; idempotent.
  void stop();

 private:
  void main();

  JobStore& store_;
  const int64_t lease_ms_;
  const int batch_size_;
  const std::function<void()> on_done_;
  const std::function<void(const std::string&)> log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace gb::coord

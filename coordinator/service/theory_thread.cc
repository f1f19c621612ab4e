// compute_theory_jobs and TheoryThread (theory_thread.h).
#include "coordinator/service/theory_thread.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "engine/jobs/job_kinds.h"
#include "engine/theory/theory_output.h"
#include "worker/job_spec.h"

namespace gb::coord {

std::vector<std::string> theory_kinds() {
  std::vector<std::string> kinds;
  for (const engine::JobKind& k : engine::job_kinds())
    if (k.theory_only) kinds.push_back(k.name);
  return kinds;
}

Result<TheoryBatchCounts> compute_theory_jobs(JobStore& store, const std::string& grid_name,
                                              const std::string& owner, int64_t lease_ms, int batch_size,
                                              const std::atomic<bool>& stop) {
  TheoryBatchCounts counts;
  const std::vector<std::string> kinds = theory_kinds();
  const std::string version = worker::engine_version();
  JobStore::BatchCursor cursor;
  while (!stop.load()) {
    Result<std::vector<Lease>> leases =
        store.lease_batch(owner, lease_ms, grid_name, kinds, std::max(batch_size, 1), &cursor);
    if (!leases.ok()) return leases.error();
    if (leases->empty()) break;
    std::vector<std::pair<int64_t, RunRecord>> done;
    done.reserve(leases->size());
    for (const Lease& lease : *leases) {
      const auto t0 = std::chrono::steady_clock::now();
      Result<engine::JobOutput> out = engine::theory_output(lease.kind, lease.params);
      if (!out.ok()) {
        // What the computation refuses will not change on a retry.
        GB_RETURN_IF_ERROR(store.fail(lease.run_id, owner, JobState::kInvalid, out.message()));
        ++counts.invalid;
        continue;
      }
      RunRecord rec;
      rec.metrics = std::move(out->metrics);
      rec.series = std::move(out->series);
      rec.device = std::move(out->device);
      rec.engine_version = version;
      rec.wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      done.emplace_back(lease.run_id, std::move(rec));
    }
    GB_RETURN_IF_ERROR(store.complete_batch(owner, done));
    counts.succeeded += static_cast<int64_t>(done.size());
    ++counts.batches;
  }
  return counts;
}


TheoryThread::TheoryThread(JobStore& store, int64_t lease_ms, int batch_size, std::function<void()> on_done,
                           std::function<void(const std::string&)> log)
    : store_(store), lease_ms_(lease_ms), batch_size_(batch_size), on_done_(std::move(on_done)),
      log_(std::move(log)) {
  thread_ = std::thread([this] { main(); });
}

TheoryThread::~TheoryThread() { stop(); }

void TheoryThread::enqueue(const std::string& grid) {
  {
    std::lock_guard lock(mu_);
    if (std::find(queue_.begin(), queue_.end(), grid) != queue_.end()) return;
    queue_.push_back(grid);
  }
  cv_.notify_one();
}

void TheoryThread::stop() {
  stop_.store(true);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TheoryThread::main() {
  while (true) {
    std::string grid;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_.load() || !queue_.empty(); });
      if (stop_.load()) return;
      grid = std::move(queue_.front());
      queue_.pop_front();
    }
    const auto t0 = std::chrono::steady_clock::now();
    Result<TheoryBatchCounts> n = compute_theory_jobs(store_, grid, kCoordinatorOwner, lease_ms_, batch_size_, stop_);
    if (!n.ok()) {
      if (log_) log_("grid " + grid + ": computing its theory-only jobs: " + n.message());
      continue;
    }
    if (n->succeeded + n->invalid == 0) continue;
    if (on_done_) on_done_();
    if (log_) {
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      log_("grid " + grid + ": " + std::to_string(n->succeeded) + " theory-only jobs computed in the coordinator (" +
           std::to_string(n->batches) + " batches, " + std::to_string(static_cast<int64_t>(ms)) + " ms)" +
           (n->invalid > 0 ? ", " + std::to_string(n->invalid) + " invalid" : ""));
    }
  }
}

}  // namespace gb::coord

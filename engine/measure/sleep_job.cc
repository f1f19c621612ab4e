// The `sleep` kind (engine/measure/measures.h).
#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "engine/measure/measures.h"

namespace gb::engine {

// The `sleep` kind: sleeps, reporting progress, and reports how long it slept. For
// tests, benchmarks, and operators checking a deployment end to end.
Result<JobOutput> run_sleep_job(const Json& params, const ProgressFn& progress) {
  const double seconds = params.at("seconds").get<double>();
  const auto t0 = std::chrono::steady_clock::now();
  const auto end = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(seconds));
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) break;
    const double done = std::chrono::duration<double>(now - t0).count();
    if (progress) progress(seconds > 0 ? done / seconds : 1.0, "slept " + std::to_string(done) + " s");
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        end - now, std::chrono::milliseconds(100)));
  }
  const double slept = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (progress) progress(1.0, "done");
  JobOutput out;
  out.metrics.push_back(value_metric("slept_s", slept, "s"));
  return out;
}

}  // namespace gb::engine

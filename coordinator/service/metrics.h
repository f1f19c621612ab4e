// The coordinator's Prometheus metrics: the counters and the lease latency
// histogram the service updates as it works, the gauges it reads at scrape time
// (jobs by grid and state from the store, workers by state from its registry), and
// their rendering in Prometheus' text exposition format 0.0.4. Also the gRPC
// server interceptor that counts every rpc that ends with a status other than OK.
// Not here: the HTTP endpoint that serves the text (http_endpoint.h) and when the
// service calls what (service.cc).
//
// The families, every one present in every scrape:
//   gridbench_jobs{grid, state}                gauge: jobs of each grid by state (a
//                                              job shared by two grids counts in both)
//   gridbench_leases_granted_total             counter: leases LeaseJob handed out
//   gridbench_leases_expired_total             counter: leases that expired unrenewed
//   gridbench_lease_latency_seconds            histogram: time a granting LeaseJob
//                                              spent in the coordinator, from the call
//                                              (or the wake-up that found its job)
//                                              to the committed lease; the long-poll
//                                              wait for work is not in it
//   gridbench_workers{state}                   gauge: registered workers by state
//                                              (active, draining, lost)
//   gridbench_rpc_errors_total{method, code}   counter: rpcs that ended non-OK
//   gridbench_build_info{version}              gauge: 1
// Counters count from the coordinator's start, as Prometheus expects of counters.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/store/job_store.h"

namespace gb::coord {

// Upper bounds (seconds) of the lease latency buckets: 0.5 ms to 2.5 s, where the
// coordinator's target is a p99 under 20 ms (bench/coordinator_bench.cc).
inline constexpr std::array<double, 12> kLeaseLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                 0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

class CoordinatorMetrics {
 public:
  // What a scrape reads from the service's state.
  struct Gauges {
    std::vector<GridSummary> grids;
    bool grids_ok = true;  // false: the store could not be read; no gridbench_jobs samples then
    std::map<std::string, int64_t> workers_by_state;
  };

  // A LeaseJob call handed out a lease after `seconds` in the coordinator.
  void lease_granted(double seconds);
  // The sweeper expired `n` leases.
  void leases_expired(int64_t n);
  // An rpc ended with a non-OK status. `method` is gRPC's full name
  // ("/gridbench.v1.Coordinator/LeaseJob"); `code` is grpc::StatusCode.
  void rpc_failed(std::string_view method, int code);

  int64_t leases_granted() const { return granted_.load(); }
  int64_t leases_expired() const { return expired_.load(); }

  // The exposition text of every family.
  std::string render(const Gauges& gauges) const;

 private:
  std::atomic<int64_t> granted_{0};
  std::atomic<int64_t> expired_{0};
  mutable std::mutex mu_;  // guards the histogram and the error counts
  std::array<int64_t, kLeaseLatencyBuckets.size()> latency_buckets_{};  // not cumulative
  int64_t latency_count_ = 0;
  double latency_sum_ = 0;
  std::map<std::pair<std::string, std::string>, int64_t> rpc_errors_;  // (method, code name) -> count
};

// The label value escaped as the text format asks: backslash, double quote and
// newline as \\, \" and \n.
std::string escape_label_value(std::string_view value);

// grpc::StatusCode's name ("FAILED_PRECONDITION"), or the number for an unknown code.
std::string status_code_name(int code);

// A server interceptor factory: each rpc that ends non-OK is counted into `metrics`
// (which must outlive the server).
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> make_rpc_error_counter(
    CoordinatorMetrics& metrics);

}  // namespace gb::coord

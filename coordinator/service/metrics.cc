#include "coordinator/service/metrics.h"

#include <grpcpp/support/status.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace gb::coord {

namespace {

// The job states in their lifecycle order: every grid shows all of them, so that a
// state's series exists (at 0) before the first job reaches it.
constexpr std::array<const char*, 9> kJobStates = {"pending", "leased",  "running", "succeeded", "failed",
                                                   "oom",     "invalid", "timeout", "cancelled"};
constexpr std::array<const char*, 3> kWorkerStates = {"active", "draining", "lost"};

// A sample value as the text format writes floats: "+Inf", integers without a
// fraction, otherwise the shortest decimal that reads back as the same double
// (0.0005, not 0.00050000000000000001: bucket bounds are label values).
std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

void family(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << ' ' << type << '\n';
}

// "/gridbench.v1.Coordinator/LeaseJob" -> "LeaseJob"; other services keep their
// full name without the leading '/' ("grpc.health.v1.Health/Check").
std::string method_label(std::string_view method) {
  constexpr std::string_view kOurs = "/gridbench.v1.Coordinator/";
  if (method.substr(0, kOurs.size()) == kOurs) return std::string(method.substr(kOurs.size()));
  if (!method.empty() && method.front() == '/') method.remove_prefix(1);
  return std::string(method);
}

class RpcErrorCounter final : public grpc::experimental::Interceptor {
 public:
  RpcErrorCounter(CoordinatorMetrics& metrics, const char* method) : metrics_(metrics), method_(method ? method : "") {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (!status.ok()) metrics_.rpc_failed(method_, static_cast<int>(status.error_code()));
    }
    methods->Proceed();
  }

 private:
  CoordinatorMetrics& metrics_;
  std::string method_;
};

class RpcErrorCounterFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcErrorCounterFactory(CoordinatorMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    return new RpcErrorCounter(metrics_, info->method());
  }

 private:
  CoordinatorMetrics& metrics_;
};

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string status_code_name(int code) {
  static constexpr std::array<const char*, 17> kNames = {
      "OK",        "CANCELLED",        "UNKNOWN",      "INVALID_ARGUMENT",    "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
      "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(kNames.size())) return kNames[static_cast<size_t>(code)];
  return std::to_string(code);
}

void CoordinatorMetrics::lease_granted(double seconds) {
  granted_.fetch_add(1);
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < kLeaseLatencyBuckets.size(); ++i) {
    if (seconds <= kLeaseLatencyBuckets[i]) {
      ++latency_buckets_[i];
      break;
    }
  }
  ++latency_count_;
  latency_sum_ += seconds;
}

void CoordinatorMetrics::leases_expired(int64_t n) {
  if (n > 0) expired_.fetch_add(n);
}

void CoordinatorMetrics::rpc_failed(std::string_view method, int code) {
  std::lock_guard lock(mu_);
  ++rpc_errors_[{method_label(method), status_code_name(code)}];
}

std::string CoordinatorMetrics::render(const Gauges& gauges) const {
  std::ostringstream out;
  family(out, "gridbench_jobs", "gauge", "Jobs of each grid by state (a job shared by two grids counts in both).");
  if (gauges.grids_ok) {
    for (const GridSummary& g : gauges.grids) {
      const std::string grid = escape_label_value(g.name);
      for (const char* state : kJobStates) {
        auto it = g.by_state.find(state);
        out << "gridbench_jobs{grid=\"" << grid << "\",state=\"" << state << "\"} "
            << (it == g.by_state.end() ? 0 : it->second) << '\n';
      }
    }
  }
  family(out, "gridbench_leases_granted_total", "counter", "Leases handed to workers by LeaseJob.");
  out << "gridbench_leases_granted_total " << granted_.load() << '\n';
  family(out, "gridbench_leases_expired_total", "counter",
         "Leases that expired without renewal (their jobs returned to pending, or failed out of attempts).");
  out << "gridbench_leases_expired_total " << expired_.load() << '\n';

  std::array<int64_t, kLeaseLatencyBuckets.size()> buckets{};
  int64_t count = 0;
  double sum = 0;
  std::map<std::pair<std::string, std::string>, int64_t> errors;
  {
    std::lock_guard lock(mu_);
    buckets = latency_buckets_;
    count = latency_count_;
    sum = latency_sum_;
    errors = rpc_errors_;
  }
  family(out, "gridbench_lease_latency_seconds", "histogram",
         "Time a granting LeaseJob call spent in the coordinator, from the call (or the wake-up that found its "
         "job) to the committed lease, without the long-poll wait for work.");
  int64_t cumulative = 0;
  for (size_t i = 0; i < kLeaseLatencyBuckets.size(); ++i) {
    cumulative += buckets[i];
    out << "gridbench_lease_latency_seconds_bucket{le=\"" << number(kLeaseLatencyBuckets[i]) << "\"} " << cumulative
        << '\n';
  }
  out << "gridbench_lease_latency_seconds_bucket{le=\"+Inf\"} " << count << '\n';
  out << "gridbench_lease_latency_seconds_sum " << number(sum) << '\n';
  out << "gridbench_lease_latency_seconds_count " << count << '\n';

  family(out, "gridbench_workers", "gauge", "Registered workers by state.");
  for (const char* state : kWorkerStates) {
    auto it = gauges.workers_by_state.find(state);
    out << "gridbench_workers{state=\"" << state << "\"} "
        << (it == gauges.workers_by_state.end() ? 0 : it->second) << '\n';
  }
  family(out, "gridbench_rpc_errors_total", "counter", "Coordinator rpcs that ended with a status other than OK.");
  for (const auto& [key, n] : errors) {
    out << "gridbench_rpc_errors_total{method=\"" << escape_label_value(key.first) << "\",code=\""
        << escape_label_value(key.second) << "\"} " << n << '\n';
  }
  family(out, "gridbench_build_info", "gauge", "The coordinator's version.");
  out << "gridbench_build_info{version=\"" << escape_label_value(GRIDBENCH_VERSION) << "\"} 1\n";
  return out.str();
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> make_rpc_error_counter(
    CoordinatorMetrics& metrics) {
  return std::make_unique<RpcErrorCounterFactory>(metrics);
}

}  // namespace gb::coord

#include "worker/worker_daemon.h"

#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <grpcpp/grpcpp.h>

#include "proto/gridbench.grpc.pb.h"
#include "kernels/device_info.h"
#include "worker/job_runner.h"

namespace gb::worker {
namespace fs = std::filesystem;
namespace pb = gridbench::v1;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// ---- small helpers ----

Json DeviceReport::to_json() const {
  return Json{{"kind", kind},
              {"index", index},
              {"name", name},
              {"memory_bytes", memory_bytes},
              {"compute_capability", compute_capability},
              {"copy_bandwidth_bytes_per_s", copy_bandwidth_bytes_per_s},
              {"matmul_flops_per_s", matmul_flops_per_s}};
}

Result<DeviceReport> discover_device(const std::string& spec, bool measure) {
  DeviceReport d;
  if (spec == "cpu") {
    kernels::DeviceInfo info = kernels::host_cpu();
    d.kind = "cpu";
    d.name = info.name;
    d.memory_bytes = info.memory_bytes;
    if (measure) d.copy_bandwidth_bytes_per_s = kernels::measure_host_copy_bandwidth(16u << 20, 8);
    return d;
  }
  const std::string prefix = "cuda:";
  if (spec.rfind(prefix, 0) != 0 || spec.size() == prefix.size() || spec.size() > prefix.size() + 4 ||
      !std::all_of(spec.begin() + static_cast<long>(prefix.size()), spec.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Error{"--device: expected \"cpu\" or \"cuda:N\", got \"" + spec + "\""};
  }
  const int index = std::stoi(spec.substr(prefix.size()));
  if (!kernels::built_with_cuda()) {
    return Error{"--device " + spec + ": this gridbench-worker was built without CUDA; use --device cpu"};
  }
  std::vector<kernels::DeviceInfo> devices = kernels::cuda_devices();
  const kernels::DeviceInfo* found = nullptr;
  std::string known;
  for (const auto& dev : devices) {
    if (dev.index == index) found = &dev;
    known += (known.empty() ? "" : ", ") + ("cuda:" + std::to_string(dev.index)) + " (" + dev.name + ")";
  }
  if (found == nullptr) {
    return Error{"--device " + spec + ": no such CUDA device (" +
                 (devices.empty() ? std::string("the CUDA runtime sees none") : "found: " + known) + ")"};
  }
  d.kind = "cuda";
  d.index = index;
  d.name = found->name;
  d.memory_bytes = found->memory_bytes;
  d.compute_capability = found->compute_capability;
  if (measure) {
    Result<double> bw = kernels::measure_cuda_copy_bandwidth(index, 256u << 20, 10);
    if (!bw.ok()) return Error{"--device " + spec + ": measuring copy bandwidth: " + bw.message()};
    d.copy_bandwidth_bytes_per_s = *bw;
    Result<double> flops = kernels::measure_cuda_matmul_flops(index, 4096, 10);
    if (!flops.ok()) return Error{"--device " + spec + ": measuring matmul rate: " + flops.message()};
    d.matmul_flops_per_s = *flops;
  }
  return d;
}

std::optional<Progress> parse_progress_line(std::string_view line) {
  constexpr std::string_view kPrefix = "progress ";
  if (line.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string rest(line.substr(kPrefix.size()));
  while (!rest.empty() && (rest.back() == '\r' || rest.back() == '\n')) rest.pop_back();
  const char* begin = rest.c_str();
  char* end = nullptr;
  double f = std::strtod(begin, &end);
  if (end == begin || (*end != '\0' && *end != ' ') || !(f == f)) return std::nullopt;
  Progress p;
  p.fraction = std::clamp(f, 0.0, 1.0);
  if (*end == ' ') p.message = std::string(end + 1);
  return p;
}

std::optional<Progress> StderrFollower::poll() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return std::nullopt;
  in.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(in.tellg());
  if (size < offset_) offset_ = 0;  // truncated: start over
  if (size == offset_) return std::nullopt;
  const uint64_t n = std::min<uint64_t>(size - offset_, 1u << 20);
  std::string chunk(n, '\0');
  in.seekg(static_cast<std::streamoff>(offset_));
  in.read(chunk.data(), static_cast<std::streamsize>(n));
  chunk.resize(static_cast<size_t>(in.gcount()));
  offset_ += chunk.size();
  partial_ += chunk;
  std::optional<Progress> latest;
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (auto p = parse_progress_line(std::string_view(partial_).substr(start, nl - start))) latest = p;
  }
  partial_.erase(0, start);
  if (partial_.size() > (64u << 10)) partial_.clear();  // a runaway line: not progress
  return latest;
}

std::string stderr_tail(const std::string& path, size_t max_bytes) {
  std::string raw = tail_file(path, 64u << 10);
  std::string kept;
  std::istringstream lines(raw);
  for (std::string line; std::getline(lines, line);) {
    if (parse_progress_line(line)) continue;
    kept += line;
    kept += '\n';
  }
  while (!kept.empty() && kept.back() == '\n') kept.pop_back();
  if (kept.size() > max_bytes) {
    kept = kept.substr(kept.size() - max_bytes);
    auto nl = kept.find('\n');
    if (nl != std::string::npos && nl + 1 < kept.size()) kept = kept.substr(nl + 1);
  }
  return kept;
}

std::string_view outcome_name(Outcome::Kind k) {
  switch (k) {
    case Outcome::kSucceeded: return "succeeded";
    case Outcome::kFailed: return "failed";
    case Outcome::kOom: return "oom";
    case Outcome::kTimeout: return "timeout";
  }
  return "failed";
}

namespace {
std::string format_seconds(double s) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g", s);
  return buf;
}
std::string cap(std::string s, size_t n = 4000) {
  if (s.size() > n) s = "..." + s.substr(s.size() - n);
  return s;
}
}  // namespace

Outcome classify_outcome(const ExitInfo& exit, bool timed_out, double timeout_s, const Result<JobResult>& result,
                         const std::string& tail) {
  Outcome o;
  if (result.ok()) o.result = *result;
  const std::string result_error = result.ok() ? result->error : "";
  auto with_tail = [&](std::string e) {
    if (!tail.empty() && (result_error.empty() || tail.find(result_error) == std::string::npos)) e += "\n" + tail;
    return cap(e);
  };
  if (timed_out) {
    o.kind = Outcome::kTimeout;
    o.error = "timed out after " + format_seconds(timeout_s) + " s (gridbench-job " + exit.describe() + ")";
    return o;
  }
  if (exit.exited && exit.code == kExitSucceeded) {
    if (result.ok() && result->status == JobStatus::kSucceeded) {
      o.kind = Outcome::kSucceeded;
      return o;
    }
    o.kind = Outcome::kFailed;
    o.error = with_tail("gridbench-job exited 0 but " +
                        (result.ok() ? "RESULT.json says " + std::string(job_status_name(result->status))
                                     : result.message()));
    return o;
  }
  if (exit.exited && exit.code == kExitOom) {
    o.kind = Outcome::kOom;
    o.error = !result_error.empty() ? cap(result_error) : (tail.empty() ? "out of memory" : cap(tail));
    return o;
  }
  o.kind = Outcome::kFailed;
  std::string e = "gridbench-job " + exit.describe();
  if (!result_error.empty()) e += ": " + result_error;
  o.error = with_tail(e);
  return o;
}

Backoff::Backoff(int initial_ms, int max_ms, uint64_t seed)
    : initial_ms_(std::max(1, initial_ms)), max_ms_(std::max(initial_ms, max_ms)), base_(initial_ms_),
      rng_(seed != 0 ? seed : static_cast<uint64_t>(Clock::now().time_since_epoch().count())) {}

int Backoff::next_ms() {
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  const double d = std::min(static_cast<double>(max_ms_), base_ * jitter(rng_));
  base_ = std::min(static_cast<double>(max_ms_), base_ * 2);
  ++attempts_;
  return std::max(1, static_cast<int>(d));
}

void Backoff::reset() {
  base_ = initial_ms_;
  attempts_ = 0;
}

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

// ---- the daemon ----

namespace {

std::string sanitize(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  }
  return out;
}

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot read: " + std::strerror(errno)};
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string status_text(const grpc::Status& s) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int code = static_cast<int>(s.error_code());
  std::string name = code >= 0 && code <= 16 ? kNames[code] : "code " + std::to_string(code);
  return s.error_message().empty() ? name : name + ": " + s.error_message();
}

enum class RpcClass { kOk, kTransient, kAuth, kRefused };
RpcClass classify(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::OK: return RpcClass::kOk;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN: return RpcClass::kTransient;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED: return RpcClass::kAuth;
    default: return RpcClass::kRefused;
  }
}

// The coordinator is away (rather than answering with an error).
bool is_unavailable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE || s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

struct CallBase {
  grpc::ClientContext ctx;
  grpc::Status status;
  virtual ~CallBase() = default;
  virtual void done() = 0;
};

template <class Reply>
struct Call final : CallBase {
  Reply reply;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Reply>> reader;
  std::function<void(const grpc::Status&, const Reply&)> on_done;
  void done() override { on_done(status, reply); }
};

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

struct Report {
  int64_t run_id = 0;
  std::string hash;
  Outcome::Kind kind = Outcome::kFailed;
  pb::CompleteJobRequest complete;  // kind == kSucceeded
  pb::FailJobRequest fail;          // otherwise
  fs::path dir;
  bool in_flight = false;
  Clock::time_point next_try;
  Backoff backoff;
  int other_errors = 0;
};

}  // namespace

struct WorkerDaemon::Impl {
  WorkerOptions o;
  std::string name;
  std::string job_binary;
  fs::path work_dir;
  DeviceReport device;

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Coordinator::Stub> stub;
  grpc::CompletionQueue cq;
  std::set<CallBase*> calls;
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
  CallBase* lease_call = nullptr;
  Clock::time_point next_lease{};
  Backoff lease_backoff;

  // Drain.
  bool draining = false;
  bool drain_in_flight = false;
  bool drain_sent = false;

  std::optional<std::string> fatal;
  std::map<int64_t, Child> children;   // by run id
  std::map<int64_t, Report> reports;   // by run id
  uint64_t seed_counter = 0;

  explicit Impl(WorkerOptions opts)
      : o(std::move(opts)),
        reg_backoff(100, 5000, o.seed),
        lease_backoff(100, 5000, o.seed ? o.seed + 1 : 0) {}

  void log(const std::string& text) const { log_line(name.empty() ? "?" : name, text); }

  uint64_t next_seed() { return o.seed ? o.seed + 100 + (++seed_counter) : 0; }

  // ---- setup ----

  Status setup() {
    if (o.slots < 1) return Error{"--slots must be at least 1"};
    if (o.coordinator.empty()) return Error{"--coordinator is required"};
    name = o.name.empty() ? host_name() + ":" + o.device : o.name;
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
    if (o.work_dir.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      work_dir = fs::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") / ("gridbench-worker-" + sanitize(name));
    } else {
      work_dir = o.work_dir;
    }
    std::error_code ec;
    fs::create_directories(work_dir / "runs", ec);
    if (ec) return Error{(work_dir / "runs").string() + ": cannot create: " + ec.message()};
    kill_orphans();

    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (!o.tls_ca.empty()) {
      grpc::SslCredentialsOptions ssl;
      Result<std::string> ca = read_text_file(o.tls_ca);
      if (!ca.ok()) return Error{"--tls-ca " + ca.message()};
      ssl.pem_root_certs = *ca;
      if (!o.tls_cert.empty() || !o.tls_key.empty()) {
        if (o.tls_cert.empty() || o.tls_key.empty()) return Error{"--tls-cert and --tls-key go together"};
        Result<std::string> cert = read_text_file(o.tls_cert);
        if (!cert.ok()) return Error{"--tls-cert " + cert.message()};
        Result<std::string> key = read_text_file(o.tls_key);
        if (!key.ok()) return Error{"--tls-key " + key.message()};
        ssl.pem_cert_chain = *cert;
        ssl.pem_private_key = *key;
      }
      creds = grpc::SslCredentials(ssl);
    } else {
      if (!o.tls_cert.empty() || !o.tls_key.empty()) return Error{"--tls-cert/--tls-key need --tls-ca"};
      creds = grpc::InsecureChannelCredentials();
    }
    channel = grpc::CreateCustomChannel(o.coordinator, creds, args);
    stub = pb::Coordinator::NewStub(channel);
    return Status::Ok();
  }

  // Children of an earlier worker process on this work dir (killed by SIGKILL) would
  // go on running jobs whose leases expire: kill them.
  void kill_orphans() {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(work_dir / "runs", ec)) {
      Result<std::string> text = read_text_file((entry.path() / "pid").string());
      if (!text.ok()) continue;
      const pid_t pid = static_cast<pid_t>(std::atol(text->c_str()));
      if (pid <= 0 || pid == getpid()) continue;
      Result<std::string> cmdline = read_text_file("/proc/" + std::to_string(pid) + "/cmdline");
      if (!cmdline.ok() || cmdline->find((entry.path() / "job.json").string()) == std::string::npos) continue;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      log("killed gridbench-job pid " + std::to_string(pid) + " left running by an earlier worker (" +
          entry.path().string() + ")");
    }
  }

  // ---- rpc plumbing ----

  template <class Reply, class Start>
  CallBase* call(int timeout_ms, Start start, std::function<void(const grpc::Status&, const Reply&)> on_done) {
    auto* c = new Call<Reply>();
    c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    if (!o.token.empty()) c->ctx.AddMetadata("authorization", "Bearer " + o.token);
    c->on_done = std::move(on_done);
    c->reader = start(&c->ctx);
    c->reader->StartCall();
    c->reader->Finish(&c->reply, &c->status, c);
    calls.insert(c);
    return c;
  }

  // Runs the callbacks of finished rpcs, waiting for the first until `until`.
  void pump(std::chrono::system_clock::time_point until) {
    void* tag = nullptr;
    bool ok = false;
    while (true) {
      grpc::CompletionQueue::NextStatus st = cq.AsyncNext(&tag, &ok, until);
      if (st != grpc::CompletionQueue::GOT_EVENT) return;
      auto* c = static_cast<CallBase*>(tag);
      calls.erase(c);
      c->done();
      delete c;
      until = std::chrono::system_clock::now();  // take what is ready, do not wait again
    }
  }

  void shutdown_calls(int wait_ms) {
    stopping = true;
    auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(wait_ms);
    while (!calls.empty() && std::chrono::system_clock::now() < deadline) pump(deadline);
    for (CallBase* c : calls) c->ctx.TryCancel();
    while (!calls.empty()) pump(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
    cq.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq.Next(&tag, &ok)) delete static_cast<CallBase*>(tag);
  }

  // An rpc found the coordinator away: stop leasing until registered again.
  void coordinator_away(const grpc::Status& s) {
    if (registered || !away_logged) {
      log("coordinator " + o.coordinator + " unavailable (" + status_text(s) +
          "); reconnecting with backoff, children keep running");
      away_logged = true;
    }
    if (registered) {
      registered = false;
      next_register = Clock::now() + std::chrono::milliseconds(reg_backoff.next_ms());
    }
  }

  // An rpc went through while the worker counts itself away: the coordinator is back,
  // so register now rather than when the backoff says.
  void coordinator_answered() {
    if (!registered && !reg_in_flight) next_register = Clock::now();
  }

  void set_fatal(const std::string& what, const grpc::Status& s) {
    if (fatal) return;
    if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED || s.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      fatal = "coordinator " + o.coordinator + " refused " + what + " (" + status_text(s) +
              "): check the token (--token-file or GRIDBENCH_TOKEN)" +
              (o.tls_ca.empty() ? "" : " and the TLS client certificate");
    } else {
      fatal = "coordinator " + o.coordinator + " refused " + what + " (" + status_text(s) + ")";
    }
  }

  // ---- registration ----

  void send_register() {
    if (stopping) return;
    reg_in_flight = true;
    pb::RegisterWorkerRequest req;
    req.set_name(name);
    req.set_slots(o.slots);
    req.set_engine_version(engine_version());
    pb::Device* d = req.add_devices();
    d->set_kind(device.kind);
    d->set_index(device.index);
    d->set_name(device.name);
    d->set_memory_bytes(device.memory_bytes);
    d->set_compute_capability(device.compute_capability);
    d->set_copy_bandwidth_bytes_per_s(device.copy_bandwidth_bytes_per_s);
    d->set_matmul_flops_per_s(device.matmul_flops_per_s);
    call<pb::RegisterWorkerReply>(
        o.rpc_timeout_ms, [&, req](grpc::ClientContext* ctx) { return stub->PrepareAsyncRegisterWorker(ctx, req, &cq); },
        [this](const grpc::Status& s, const pb::RegisterWorkerReply& r) { on_registered(s, r); });
  }

  void on_registered(const grpc::Status& s, const pb::RegisterWorkerReply& r) {
    reg_in_flight = false;
    if (stopping) return;
    switch (classify(s)) {
      case RpcClass::kOk: {
        registered = true;
        worker_id = r.worker_id();
        if (r.lease_ms() > 0) lease_ms = r.lease_ms();
        log(std::string(ever_registered ? "registered again" : "registered") + " with " + o.coordinator +
            " as worker " + std::to_string(worker_id) + " (lease " + std::to_string(lease_ms) + " ms, device " +
            device.kind + (device.kind == "cuda" ? ":" + std::to_string(device.index) : "") + " \"" + device.name +
            "\", " + std::to_string(o.slots) + " slot" + (o.slots == 1 ? "" : "s") + ")");
        ever_registered = true;
        away_logged = false;
        if (draining) drain_sent = false;  // a restarted coordinator must hear it again
        reg_backoff.reset();
        lease_backoff.reset();
        next_lease = Clock::now();
        // Back after an absence: renew every lease and retry every report now.
        for (auto& [id, ch] : children) ch.next_renew = Clock::now();
        for (auto& [id, rep] : reports) {
          rep.next_try = Clock::now();
          rep.backoff.reset();
        }
        return;
      }
      case RpcClass::kTransient: {
        const int delay = reg_backoff.next_ms();
        if (!away_logged || reg_backoff.attempts() % 20 == 0) {
          log("cannot register with " + o.coordinator + " (" + status_text(s) + "); retrying in " +
              std::to_string(delay) + " ms");
          away_logged = true;
        }
        next_register = Clock::now() + std::chrono::milliseconds(delay);
        return;
      }
      case RpcClass::kAuth:
      case RpcClass::kRefused: set_fatal("the registration", s); return;
    }
  }

  // ---- leasing ----

  void send_lease() {
    if (stopping) return;
    lease_in_flight = true;
    pb::LeaseJobRequest req;
    req.set_worker_id(worker_id);
    req.set_worker_name(name);
    req.set_wait_ms(o.lease_wait_ms);
    const auto sent = Clock::now();
    lease_call = call<pb::LeaseJobReply>(
        o.lease_wait_ms + o.rpc_timeout_ms,
        [&, req](grpc::ClientContext* ctx) { return stub->PrepareAsyncLeaseJob(ctx, req, &cq); },
        [this, sent](const grpc::Status& s, const pb::LeaseJobReply& r) { on_lease(s, r, sent); });
  }

  void on_lease(const grpc::Status& s, const pb::LeaseJobReply& r, Clock::time_point sent) {
    lease_in_flight = false;
    lease_call = nullptr;
    if (stopping) {
      if (s.ok() && r.has_job()) {
        log("run " + std::to_string(r.run_id()) + " leased while stopping: not started; its lease will expire");
      }
      return;
    }
    switch (classify(s)) {
      case RpcClass::kOk:
        lease_backoff.reset();
        if (r.has_job()) {
          start_child(r);
        } else if (Clock::now() - sent < std::chrono::milliseconds(o.lease_wait_ms / 2)) {
          next_lease = Clock::now() + std::chrono::milliseconds(200);  // answered early: do not spin
        }
        return;
      case RpcClass::kTransient:
        if (is_unavailable(s)) {
          coordinator_away(s);
        } else {
          log("LeaseJob failed (" + status_text(s) + "); retrying");
          next_lease = Clock::now() + std::chrono::milliseconds(lease_backoff.next_ms());
        }
        return;
      case RpcClass::kAuth: set_fatal("a lease request", s); return;
      case RpcClass::kRefused:
        if (s.error_code() == grpc::StatusCode::NOT_FOUND || s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
          log("LeaseJob refused (" + status_text(s) + "); registering again");
          registered = false;
          next_register = Clock::now() + std::chrono::milliseconds(reg_backoff.next_ms());
        } else {
          log("LeaseJob refused (" + status_text(s) + "); retrying with backoff");
          next_lease = Clock::now() + std::chrono::milliseconds(lease_backoff.next_ms());
        }
        return;
    }
  }

  void add_fail_report(int64_t run_id, const std::string& hash, Outcome::Kind kind, const std::string& error,
                       const fs::path& dir) {
    Report rep{run_id, hash, kind, {}, {}, dir, false, Clock::now(), Backoff(100, 5000, next_seed()), 0};
    rep.fail.set_worker_id(worker_id);
    rep.fail.set_worker_name(name);
    rep.fail.set_run_id(run_id);
    rep.fail.set_outcome(std::string(outcome_name(kind)));
    rep.fail.set_error(error);
    reports.insert_or_assign(run_id, std::move(rep));
  }

  void start_child(const pb::LeaseJobReply& r) {
    const pb::Job& job = r.job();
    const int64_t run_id = r.run_id();
    fs::path dir = work_dir / "runs" / (sanitize(job.hash()) + "-run" + std::to_string(run_id));
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    auto refuse = [&](const std::string& error) {
      log("run " + std::to_string(run_id) + " (" + job.hash() + ") cannot start: " + error);
      add_fail_report(run_id, job.hash(), Outcome::kFailed, error, dir);
    };
    if (ec) return refuse(dir.string() + ": cannot create: " + ec.message());
    JobSpec spec;
    spec.kind = job.kind();
    spec.hash = job.hash();
    spec.repeat = job.repeat();
    try {
      spec.params = Json::parse(job.params_json().empty() ? "{}" : job.params_json());
    } catch (const std::exception& e) {
      return refuse("params_json is not JSON: " + std::string(e.what()));
    }
    const std::string spec_path = (dir / "job.json").string();
    if (Status st = write_json_file(spec_path, job_spec_to_json(spec)); !st.ok()) return refuse(st.message());
    Child ch;
    ch.run_id = run_id;
    ch.hash = job.hash();
    ch.kind = job.kind();
    ch.attempt = r.attempt();
    ch.timeout_s = r.timeout_s();
    ch.lease_ms = r.lease_ms() > 0 ? r.lease_ms() : lease_ms;
    ch.dir = dir;
    ch.result_path = (dir / "result.json").string();
    ch.stderr_path = (dir / "stderr.log").string();
    Result<pid_t> pid = spawn_process({job_binary, "--spec", spec_path, "--out", ch.result_path},
                                      (dir / "stdout.log").string(), ch.stderr_path);
    if (!pid.ok()) return refuse(pid.message());
    ch.pid = *pid;
    {
      std::ofstream(dir / "pid") << ch.pid << "\n";
    }
    ch.follower = StderrFollower(ch.stderr_path);
    ch.started = Clock::now();
    ch.next_renew = ch.started;  // tell the coordinator at once that it runs
    log("run " + std::to_string(run_id) + " started: " + job.kind() + " " + job.hash() + " " + job.params_json() +
        " (attempt " + std::to_string(r.attempt()) + ", pid " + std::to_string(ch.pid) +
        (ch.timeout_s > 0 ? ", timeout " + format_seconds(ch.timeout_s) + " s" : "") + ")");
    children.insert_or_assign(run_id, std::move(ch));
  }

  // ---- running children ----

  void begin_kill(Child& ch, KillReason why) {
    if (ch.kill != KillReason::kNone) return;
    ch.kill = why;
    kill(-ch.pid, SIGTERM);
    kill(ch.pid, SIGTERM);
    ch.kill_deadline = Clock::now() + std::chrono::milliseconds(o.kill_grace_ms);
  }

  void send_renew(Child& ch) {
    if (stopping) return;
    ch.renew_in_flight = true;
    ch.next_renew = Clock::now() + std::chrono::milliseconds(std::max<int64_t>(1, ch.lease_ms / 3));
    pb::RenewLeaseRequest req;
    req.set_worker_id(worker_id);
    req.set_worker_name(name);
    req.set_run_id(ch.run_id);
    req.set_progress(ch.progress.fraction);
    req.set_message(ch.progress.message);
    req.set_running(true);
    const int64_t run_id = ch.run_id;
    call<pb::RenewLeaseReply>(
        o.rpc_timeout_ms, [&, req](grpc::ClientContext* ctx) { return stub->PrepareAsyncRenewLease(ctx, req, &cq); },
        [this, run_id](const grpc::Status& s, const pb::RenewLeaseReply& r) { on_renewed(run_id, s, r); });
  }

  void on_renewed(int64_t run_id, const grpc::Status& s, const pb::RenewLeaseReply& r) {
    auto it = children.find(run_id);
    if (it == children.end() || stopping) return;  // it ended meanwhile; its report says the rest
    Child& ch = it->second;
    ch.renew_in_flight = false;
    switch (classify(s)) {
      case RpcClass::kOk:
        coordinator_answered();
        if (r.cancelled()) {
          log("run " + std::to_string(run_id) + " (" + ch.hash + ") cancelled by the coordinator: stopping pid " +
              std::to_string(ch.pid));
          begin_kill(ch, KillReason::kCancelled);
        }
        return;
      case RpcClass::kTransient:
        if (is_unavailable(s)) coordinator_away(s);
        // Retry soon (its lease may be running out), but no faster than the interval.
        ch.next_renew = std::min(ch.next_renew, Clock::now() + std::chrono::milliseconds(1000));
        return;
      case RpcClass::kAuth: set_fatal("a lease renewal", s); return;
      case RpcClass::kRefused:
        coordinator_answered();
        log("lease of run " + std::to_string(run_id) + " (" + ch.hash + ") lost (" + status_text(s) +
            "): stopping pid " + std::to_string(ch.pid));
        begin_kill(ch, KillReason::kLeaseLost);
        return;
    }
  }

  void on_child_exit(Child& ch, const ExitInfo& exit) {
    const double secs = std::chrono::duration<double>(Clock::now() - ch.started).count();
    const std::string run = "run " + std::to_string(ch.run_id) + " (" + ch.hash + ")";
    std::error_code ec;
    if (ch.kill == KillReason::kCancelled || ch.kill == KillReason::kLeaseLost) {
      log(run + " stopped after " + format_seconds(secs) + " s (" + exit.describe() + "); nothing reported");
      fs::remove_all(ch.dir, ec);
      return;
    }
    Result<Json> doc = read_json_file(ch.result_path);
    Result<JobResult> result = doc.ok() ? job_result_from_json(*doc, ch.result_path) : Result<JobResult>(doc.error());
    Outcome out = classify_outcome(exit, ch.kill == KillReason::kTimeout, ch.timeout_s, result,
                                   stderr_tail(ch.stderr_path));
    if (out.kind == Outcome::kSucceeded) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.1f", out.result.wall_ms);
      log(run + " succeeded in " + buf + " ms");
      Report rep{ch.run_id, ch.hash, out.kind, {}, {}, ch.dir, false, Clock::now(), Backoff(100, 5000, next_seed()), 0};
      pb::CompleteJobRequest& c = rep.complete;
      c.set_worker_id(worker_id);
      c.set_worker_name(name);
      c.set_run_id(ch.run_id);
      for (const auto& m : out.result.output.metrics) {
        pb::Metric* pm = c.add_metrics();
        pm->set_name(m.name);
        if (m.value) pm->set_value(*m.value);
        pm->set_unit(m.unit);
        pm->set_text(m.text);
      }
      for (const auto& sr : out.result.output.series) {
        pb::Series* ps = c.add_series();
        ps->set_name(sr.name);
        ps->set_x_unit(sr.x_unit);
        ps->set_y_unit(sr.y_unit);
        for (const auto& p : sr.points) {
          ps->add_x(p.x);
          ps->add_y(p.y);
        }
      }
      const Json& dev = out.result.output.device;
      c.set_device_json((dev.is_object() && !dev.empty()) ? dev.dump() : device.to_json().dump());
      c.set_engine_version(out.result.engine_version.empty() ? engine_version() : out.result.engine_version);
      c.set_wall_ms(out.result.wall_ms);
      reports.insert_or_assign(ch.run_id, std::move(rep));
    } else {
      log(run + " " + std::string(outcome_name(out.kind)) + " after " + format_seconds(secs) + " s: " + out.error);
      add_fail_report(ch.run_id, ch.hash, out.kind, out.error, ch.dir);
    }
  }

  void tick_children() {
    for (auto it = children.begin(); it != children.end();) {
      Child& ch = it->second;
      const auto now = Clock::now();
      std::optional<ExitInfo> exit = poll_process(ch.pid);
      if (exit) {
        on_child_exit(ch, *exit);
        it = children.erase(it);
        continue;
      }
      if (ch.kill == KillReason::kNone && ch.timeout_s > 0 &&
          now - ch.started > std::chrono::duration<double>(ch.timeout_s)) {
        log("run " + std::to_string(ch.run_id) + " (" + ch.hash + ") exceeded its timeout of " +
            format_seconds(ch.timeout_s) + " s: stopping pid " + std::to_string(ch.pid));
        begin_kill(ch, KillReason::kTimeout);
      }
      if (ch.kill != KillReason::kNone) {
        if (!ch.sigkill_sent && now >= ch.kill_deadline) {
          kill(-ch.pid, SIGKILL);
          kill(ch.pid, SIGKILL);
          ch.sigkill_sent = true;
        }
      } else if (!ch.renew_in_flight && now >= ch.next_renew) {
        if (auto p = ch.follower.poll()) ch.progress = *p;  // the latest progress line
        send_renew(ch);
      }
      ++it;
    }
  }

  // ---- reports ----

  void send_report(Report& rep) {
    if (stopping && rep.in_flight) return;
    rep.in_flight = true;
    const int64_t run_id = rep.run_id;
    const int timeout = stopping ? 1000 : o.rpc_timeout_ms;
    if (rep.kind == Outcome::kSucceeded) {
      pb::CompleteJobRequest req = rep.complete;
      req.set_worker_id(worker_id);
      call<pb::CompleteJobReply>(
          timeout, [&, req](grpc::ClientContext* ctx) { return stub->PrepareAsyncCompleteJob(ctx, req, &cq); },
          [this, run_id](const grpc::Status& s, const pb::CompleteJobReply& r) {
            on_reported(run_id, s, r.duplicate() ? " (duplicate)" : "");
          });
    } else {
      pb::FailJobRequest req = rep.fail;
      req.set_worker_id(worker_id);
      call<pb::FailJobReply>(
          timeout, [&, req](grpc::ClientContext* ctx) { return stub->PrepareAsyncFailJob(ctx, req, &cq); },
          [this, run_id](const grpc::Status& s, const pb::FailJobReply& r) {
            on_reported(run_id, s, r.job_state().empty() ? "" : "; the job is " + r.job_state());
          });
    }
  }

  void on_reported(int64_t run_id, const grpc::Status& s, const std::string& detail) {
    auto it = reports.find(run_id);
    if (it == reports.end()) return;
    Report& rep = it->second;
    rep.in_flight = false;
    const std::string what = "run " + std::to_string(run_id) + " (" + rep.hash + ") " +
                             std::string(outcome_name(rep.kind));
    std::error_code ec;
    switch (classify(s)) {
      case RpcClass::kOk:
        coordinator_answered();
        log("reported " + what + detail);
        if (rep.kind == Outcome::kSucceeded) fs::remove_all(rep.dir, ec);
        reports.erase(it);
        return;
      case RpcClass::kTransient:
        if (stopping) return;
        if (is_unavailable(s)) {
          coordinator_away(s);
        } else if (++rep.other_errors >= 10) {
          log("giving up reporting " + what + " after 10 errors (last: " + status_text(s) +
              "); the lease will expire and the job run again");
          reports.erase(it);
          return;
        }
        rep.next_try = Clock::now() + std::chrono::milliseconds(rep.backoff.next_ms());
        return;
      case RpcClass::kAuth:
        set_fatal("a report", s);
        return;
      case RpcClass::kRefused:
        coordinator_answered();
        log("coordinator refused the report of " + what + " (" + status_text(s) + "); discarded");
        reports.erase(it);
        return;
    }
  }

  void send_drain() {
    if (stopping) return;
    drain_in_flight = true;
    drain_sent = true;
    pb::DrainRequest req;
    req.set_worker_id(worker_id);
    req.set_worker_name(name);
    call<pb::DrainReply>(
        o.rpc_timeout_ms, [&, req](grpc::ClientContext* ctx) { return stub->PrepareAsyncDrain(ctx, req, &cq); },
        [this](const grpc::Status& s, const pb::DrainReply&) {
          drain_in_flight = false;
          if (!s.ok()) log("Drain failed (" + status_text(s) + "); draining anyway");
        });
  }

  // ---- the loop ----

  int stop_now(int code) {
    if (fatal) log("fatal: " + *fatal);
    if (!children.empty()) {
      log("stopping " + std::to_string(children.size()) + " running child" + (children.size() == 1 ? "" : "ren"));
    }
    for (auto& [id, ch] : children) {
      kill(-ch.pid, SIGTERM);
      kill(ch.pid, SIGTERM);
    }
    for (auto& [id, ch] : children) {
      ExitInfo e = terminate_process(ch.pid, o.kill_grace_ms);
      if (code == kWorkerInterrupted && ever_registered) {
        add_fail_report(ch.run_id, ch.hash, Outcome::kFailed,
                        "worker " + name + " stopped by a second signal (gridbench-job " + e.describe() + ")", ch.dir);
      }
    }
    children.clear();
    // Last word on every unreported run, one try each (1 s), so that its job need
    // not wait for lease expiry; without a coordinator the leases expire.
    if (code == kWorkerInterrupted && !fatal) {
      stopping = true;
      for (auto& [id, rep] : reports) send_report(rep);
    }
    shutdown_calls(code == kWorkerInterrupted ? 1500 : 0);
    for (auto& [id, rep] : reports) {
      log("run " + std::to_string(id) + " (" + rep.hash + ") not reported: " + std::string(outcome_name(rep.kind)));
    }
    log(code == kWorkerInterrupted ? "stopped (second signal)" : "exiting");
    return code;
  }

  int run(const std::atomic<int>& signals) {
    if (Status st = setup(); !st.ok()) {
      log("error: " + st.message());
      return kWorkerError;
    }
    log("starting: coordinator " + o.coordinator + ", device " + o.device + ", " + std::to_string(o.slots) +
        " slot" + (o.slots == 1 ? "" : "s") + ", job binary " + job_binary + ", work dir " + work_dir.string());
    while (true) {
      const int sig = signals.load();
      if (sig >= 2) return stop_now(kWorkerInterrupted);
      if (fatal) return stop_now(kWorkerError);
      if (sig == 1 && !draining) {
        draining = true;
        log("draining: no new leases; waiting for " + std::to_string(children.size()) +
            " running job(s) and " + std::to_string(reports.size()) + " report(s); a second signal stops at once");
      }
      const auto now = Clock::now();
      if (!registered && !reg_in_flight && now >= next_register) send_register();
      if (draining && !drain_sent && !drain_in_flight && registered) send_drain();
      if (registered && !draining && !lease_in_flight && static_cast<int>(children.size()) < o.slots &&
          now >= next_lease) {
        send_lease();
      }
      tick_children();
      for (auto& [id, rep] : reports) {
        if (!rep.in_flight && Clock::now() >= rep.next_try) send_report(rep);
      }
      if (draining && children.empty() && reports.empty() && !lease_in_flight && !drain_in_flight) {
        shutdown_calls(0);
        log("drained: every run reported; exiting");
        return kWorkerDrained;
      }
      pump(std::chrono::system_clock::now() + std::chrono::milliseconds(children.empty() ? 50 : 10));
    }
  }
};

WorkerDaemon::WorkerDaemon(WorkerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
WorkerDaemon::~WorkerDaemon() = default;
int WorkerDaemon::run(const std::atomic<int>& signals) { return impl_->run(signals); }

}  // namespace gb::worker

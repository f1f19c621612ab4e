// The plumbing of the worker's rpcs (worker/daemon/coordinator_client.h): the channel and
// its credentials, the completion queue, how a status is taken, and the backoff
// between retries (Backoff, declared in worker_daemon.h). Not here: which rpc is sent
// when, and what its answer does (worker_rpcs.cc, report_queue.cc).
#include "worker/daemon/coordinator_client.h"

#include <algorithm>

#include "worker/daemon/worker_daemon_util.h"

namespace gb::worker {

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

RpcClass classify_rpc(const grpc::Status& s) {
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

bool is_unavailable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE || s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

Status CoordinatorClient::connect(const WorkerOptions& o) {
  token_ = o.token;
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
  channel_ = grpc::CreateCustomChannel(o.coordinator, creds, args);
  stub_ = gridbench::v1::Coordinator::NewStub(channel_);
  return Status::Ok();
}

void CoordinatorClient::pump(std::chrono::system_clock::time_point until) {
  void* tag = nullptr;
  bool ok = false;
  while (true) {
    grpc::CompletionQueue::NextStatus st = cq_.AsyncNext(&tag, &ok, until);
    if (st != grpc::CompletionQueue::GOT_EVENT) return;
    auto* c = static_cast<CallBase*>(tag);
    calls_.erase(c);
    c->done();
    delete c;
    until = std::chrono::system_clock::now();  // take what is ready, do not wait again
  }
}

void CoordinatorClient::shutdown(int wait_ms) {
  auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(wait_ms);
  while (!calls_.empty() && std::chrono::system_clock::now() < deadline) pump(deadline);
  for (CallBase* c : calls_) c->ctx.TryCancel();
  while (!calls_.empty()) pump(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  cq_.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) delete static_cast<CallBase*>(tag);
}

}  // namespace gb::worker

// The worker daemon's gRPC client of the coordinator, as plumbing (private to
// gb_worker): the channel (TLS, the bearer token), one completion queue, the calls
// in flight and their callbacks, and how the worker takes a status. It names no rpc:
// what the worker sends and what each answer does is worker_rpcs.cc (register,
// lease, renew, drain) and report_queue.cc (CompleteJob/FailJob).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/status.h"
#include "proto/gridbench.grpc.pb.h"
#include "worker/daemon/worker_daemon.h"

namespace gb::worker {

// How the worker takes an rpc's status: done, worth retrying, a refused token
// (fatal), or refused for good.
enum class RpcClass { kOk, kTransient, kAuth, kRefused };
RpcClass classify_rpc(const grpc::Status& s);

// The coordinator is away (rather than answering with an error).
bool is_unavailable(const grpc::Status& s);

// "UNAVAILABLE: MESSAGE" (or just the code's name).
std::string status_text(const grpc::Status& s);

class CoordinatorClient {
 public:
  // One rpc in flight; pump() runs its callback once its answer (or error) is in.
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

  // The channel to o.coordinator (TLS when o.tls_ca is set); every call sends
  // o.token. An error names the flag at fault.
  Status connect(const WorkerOptions& o);

  // Starts an rpc with a deadline of timeout_ms: `start` prepares it, e.g.
  // [&](grpc::ClientContext* ctx) { return stub()->PrepareAsyncDrain(ctx, req, cq()); }.
  // `on_done` runs from pump().
  template <class Reply, class Start>
  CallBase* call(int timeout_ms, Start start, std::function<void(const grpc::Status&, const Reply&)> on_done) {
    auto* c = new Call<Reply>();
    c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    if (!token_.empty()) c->ctx.AddMetadata("authorization", "Bearer " + token_);
    c->on_done = std::move(on_done);
    c->reader = start(&c->ctx);
    c->reader->StartCall();
    c->reader->Finish(&c->reply, &c->status, c);
    calls_.insert(c);
    return c;
  }

  // Runs the callbacks of finished rpcs, waiting for the first until `until`.
  void pump(std::chrono::system_clock::time_point until);

  // Lets the calls in flight finish for up to wait_ms, cancels the rest (running
  // their callbacks), then shuts the queue down.
  void shutdown(int wait_ms);

  gridbench::v1::Coordinator::Stub* stub() { return stub_.get(); }
  grpc::CompletionQueue* cq() { return &cq_; }

 private:
  std::string token_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<gridbench::v1::Coordinator::Stub> stub_;
  grpc::CompletionQueue cq_;
  std::set<CallBase*> calls_;
};

}  // namespace gb::worker

// The fixture of the coordinator service's tests: a real CoordinatorServer on a
// loopback port over a database of its own per test, a stub, and helpers for each
// rpc (shared by the tests in this folder; not a test itself).
#pragma once

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "coordinator/service/service.h"

namespace gb::coord::service_testing {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

inline constexpr const char* kNaps = R"({"name": "naps", "axes": {"seconds": [0, 0.001, 0.002]}, "measure": ["sleep"]})";

inline double elapsed_ms(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Direct sqlite3 access to the coordinator's file, as a `sqlite3` user would query.
inline int64_t query_int(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  int64_t v = -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close_v2(db);
  return v;
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("gb_service_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = (dir_ / "coord.db").string();
  }
  void TearDown() override {
    stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void start(ServiceOptions so = {}, int64_t lease_ms = 2000) {
    so.lease_ms = lease_ms;
    token_ = so.token;
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.db_path = db_;
    o.service = std::move(so);
    auto server = CoordinatorServer::start(o);
    ASSERT_TRUE(server.ok()) << server.message();
    server_ = std::move(*server);
    ASSERT_GT(server_->port(), 0);
    ASSERT_EQ(server_->address(), "127.0.0.1:" + std::to_string(server_->port()));
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = pb::Coordinator::NewStub(channel_);
  }
  void stop() {
    stub_.reset();
    channel_.reset();
    if (server_) {
      server_->shutdown(500);
      server_->wait();
      server_.reset();
    }
  }

  std::unique_ptr<grpc::ClientContext> ctx(int timeout_ms = 5000) {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + milliseconds(timeout_ms));
    if (!token_.empty()) c->AddMetadata("authorization", "Bearer " + token_);
    return c;
  }

  pb::SubmitGridReply submit(const std::string& text = kNaps, const std::string& source = "naps.json") {
    pb::SubmitGridRequest req;
    req.set_grid_text(text);
    req.set_source(source);
    pb::SubmitGridReply reply;
    grpc::Status s = stub_->SubmitGrid(ctx().get(), req, &reply);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return reply;
  }

  int64_t register_worker(const std::string& name, const std::string& kind = "cpu", double memory = 64e9,
                          const std::string& instance = "", grpc::Status* status = nullptr) {
    pb::RegisterWorkerRequest req;
    req.set_name(name);
    req.set_instance(instance);
    req.set_slots(1);
    req.set_engine_version("test");
    pb::Device* d = req.add_devices();
    d->set_kind(kind);
    d->set_memory_bytes(memory);
    d->set_name(kind == "cuda" ? "Test GPU" : "Test CPU");
    pb::RegisterWorkerReply reply;
    grpc::Status s = stub_->RegisterWorker(ctx().get(), req, &reply);
    if (status != nullptr) {
      *status = s;
    } else {
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    return reply.worker_id();
  }

  pb::LeaseJobReply lease(const std::string& worker, int wait_ms = 0, grpc::Status* status = nullptr) {
    pb::LeaseJobRequest req;
    req.set_worker_name(worker);
    req.set_wait_ms(wait_ms);
    pb::LeaseJobReply reply;
    grpc::Status s = stub_->LeaseJob(ctx(wait_ms + 5000).get(), req, &reply);
    if (status != nullptr) {
      *status = s;
    } else {
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
    return reply;
  }

  grpc::Status renew(const std::string& worker, int64_t run_id, pb::RenewLeaseReply* reply, bool running = true,
                     double progress = 0.5) {
    pb::RenewLeaseRequest req;
    req.set_worker_name(worker);
    req.set_run_id(run_id);
    req.set_running(running);
    req.set_progress(progress);
    req.set_message("half way");
    return stub_->RenewLease(ctx().get(), req, reply);
  }

  grpc::Status complete(const std::string& worker, int64_t run_id, pb::CompleteJobReply* reply) {
    pb::CompleteJobRequest req;
    req.set_worker_name(worker);
    req.set_run_id(run_id);
    pb::Metric* m = req.add_metrics();
    m->set_name("slept_s");
    m->set_value(0.001);
    m->set_unit("s");
    pb::Metric* t = req.add_metrics();
    t->set_name("note");
    t->set_text("none");
    pb::Series* s = req.add_series();
    s->set_name("curve");
    s->set_x_unit("tokens");
    s->set_y_unit("ms");
    s->add_x(1);
    s->add_y(2);
    s->add_x(3);
    s->add_y(4);
    req.set_device_json(R"({"name": "Test CPU"})");
    req.set_engine_version("test");
    req.set_wall_ms(1.5);
    return stub_->CompleteJob(ctx().get(), req, reply);
  }

  grpc::Status fail(const std::string& worker, int64_t run_id, const std::string& outcome, const std::string& error,
                    pb::FailJobReply* reply) {
    pb::FailJobRequest req;
    req.set_worker_name(worker);
    req.set_run_id(run_id);
    req.set_outcome(outcome);
    req.set_error(error);
    return stub_->FailJob(ctx().get(), req, reply);
  }

  std::vector<pb::Job> jobs(const std::string& grid = "naps", const std::string& state = "") {
    pb::ListJobsRequest req;
    req.set_grid(grid);
    req.set_state(state);
    pb::ListJobsReply reply;
    grpc::Status s = stub_->ListJobs(ctx().get(), req, &reply);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {reply.jobs().begin(), reply.jobs().end()};
  }

  pb::Job job_with_hash(const std::string& hash) {
    for (const pb::Job& j : jobs())
      if (j.hash() == hash) return j;
    ADD_FAILURE() << "no job " << hash;
    return {};
  }

  pb::GridStatus grid_status(const std::string& name = "naps") {
    pb::ListGridsReply reply;
    grpc::Status s = stub_->ListGrids(ctx().get(), pb::ListGridsRequest(), &reply);
    EXPECT_TRUE(s.ok()) << s.error_message();
    for (const auto& g : reply.grids())
      if (g.name() == name) return g;
    ADD_FAILURE() << "no grid " << name;
    return {};
  }

  int64_t result_rows() { return query_int(db_, "SELECT COUNT(*) FROM results"); }

  fs::path dir_;
  std::string db_;
  std::string token_;
  std::unique_ptr<CoordinatorServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Coordinator::Stub> stub_;
};

}  // namespace gb::coord::service_testing

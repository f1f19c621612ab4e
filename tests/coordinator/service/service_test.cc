// The gRPC Coordinator service in-process on 127.0.0.1:0 with a temporary database:
// submission, the lease protocol (lease, renew, complete, fail, expiry, cancel),
// exactly-once results, long-polls, watches, placement, auth and the bind policy.
// Every test is bounded in time (well under 10 s).
#include "coordinator/service/service.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/service/auth.h"
#include "tests/coordinator/service/service_fixture.h"
#include "coordinator/store/job_store.h"
#include "tests/coordinator/store/schema_downgrade.h"

namespace gb::coord {
namespace {

using namespace service_testing;  // the fixture (service_fixture.h)

// ---- submission ----

TEST_F(ServiceTest, SubmitsAValidGridAndRefusesAnInvalidOneWritingNothing) {
  start();
  pb::SubmitGridRequest bad;
  bad.set_source("bad.json");
  bad.set_grid_text(R"({"name": "bad", "axes": {"seconds": [1, -5, "x"]}, "measure": ["sleep", "nope"]})");
  pb::SubmitGridReply reply;
  grpc::Status s = stub_->SubmitGrid(ctx().get(), bad, &reply);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Every error, one per line, each naming the file and the JSON path.
  const std::string& msg = s.error_message();
  EXPECT_NE(msg.find("bad.json: $.axes.seconds[1]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.json: $.axes.seconds[2]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.json: $.measure[1]"), std::string::npos) << msg;
  EXPECT_NE(msg.find('\n'), std::string::npos) << msg;

  bad.set_grid_text("{\"name\": \"bad\",\n  \"axes\": {\"seconds\": [1,]}}");
  s = stub_->SubmitGrid(ctx().get(), bad, &reply);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("bad.json: line 2 column", 0), 0u) << s.error_message();

  bad.set_grid_text("");
  EXPECT_EQ(stub_->SubmitGrid(ctx().get(), bad, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  pb::ListGridsReply grids;
  ASSERT_TRUE(stub_->ListGrids(ctx().get(), pb::ListGridsRequest(), &grids).ok());
  EXPECT_EQ(grids.grids_size(), 0);
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM jobs"), 0);

  pb::SubmitGridReply ok = submit();
  EXPECT_EQ(ok.name(), "naps");
  EXPECT_EQ(ok.jobs(), 3);
  EXPECT_EQ(ok.queued(), 3);
  EXPECT_EQ(ok.reused(), 0);
  EXPECT_EQ(ok.unplaceable(), 3);  // no worker is registered yet

  // YAML by the source's extension; the same jobs (shared by hash).
  pb::SubmitGridReply yaml = submit("name: naps-yaml\naxes:\n  seconds: [0, 0.001]\nmeasure: [sleep]\n", "naps.yaml");
  EXPECT_EQ(yaml.name(), "naps-yaml");
  EXPECT_EQ(yaml.jobs(), 2);
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM jobs"), 3);

  pb::GridStatus st = grid_status();
  EXPECT_EQ(st.total(), 3);
  EXPECT_EQ(st.source(), "naps.json");
  EXPECT_EQ(st.by_state().at("pending"), 3);
  EXPECT_EQ(st.by_state().at("succeeded"), 0);  // every state, zeros included
  EXPECT_EQ(st.by_state().size(), 9u);
  EXPECT_EQ(st.by_state().at("invalid"), 0);

  std::vector<pb::Job> js = jobs();
  ASSERT_EQ(js.size(), 3u);
  EXPECT_EQ(js[1].kind(), "sleep");
  EXPECT_EQ(js[1].params_json(), R"({"seconds":0.001})");
  EXPECT_EQ(js[1].state(), "pending");
  EXPECT_EQ(js[1].hash().size(), 16u);

  pb::ListJobsRequest unknown;
  pb::ListJobsReply none;
  unknown.set_grid("nope");
  EXPECT_EQ(stub_->ListJobs(ctx().get(), unknown, &none).error_code(), grpc::StatusCode::NOT_FOUND);
  unknown.set_grid("naps");
  unknown.set_state("sleeping");
  EXPECT_EQ(stub_->ListJobs(ctx().get(), unknown, &none).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// ---- the lease protocol ----

TEST_F(ServiceTest, LeaseRenewCompleteRoundTripWithResults) {
  start();
  submit();
  const int64_t id = register_worker("w1");
  EXPECT_GT(id, 0);
  EXPECT_EQ(register_worker("w1"), id);  // idempotent by name
  {
    pb::RegisterWorkerRequest bare;
    bare.set_name("no-devices");
    pb::RegisterWorkerReply reply;
    EXPECT_EQ(stub_->RegisterWorker(ctx().get(), bare, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    bare.set_name("");
    bare.add_devices()->set_kind("cpu");
    EXPECT_EQ(stub_->RegisterWorker(ctx().get(), bare, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }

  pb::LeaseJobReply l = lease("w1");
  ASSERT_TRUE(l.has_job());
  EXPECT_GT(l.run_id(), 0);
  EXPECT_EQ(l.attempt(), 1);
  EXPECT_EQ(l.lease_ms(), 2000);
  EXPECT_GT(l.lease_expires_ms(), now_ms());
  EXPECT_EQ(l.job().kind(), "sleep");
  EXPECT_EQ(l.job().params_json(), R"({"seconds":0})");
  EXPECT_EQ(l.job().state(), "leased");
  EXPECT_EQ(l.job().lease_owner(), "w1");

  pb::RenewLeaseReply r;
  grpc::Status s = renew("w1", l.run_id(), &r, /*running=*/true, 0.5);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(r.cancelled());
  EXPECT_GE(r.lease_expires_ms(), l.lease_expires_ms());
  pb::Job running = job_with_hash(l.job().hash());
  EXPECT_EQ(running.state(), "running");
  EXPECT_EQ(running.lease_owner(), "w1");
  EXPECT_DOUBLE_EQ(running.progress(), 0.5);
  EXPECT_EQ(running.progress_message(), "half way");

  pb::ListWorkersReply workers;
  ASSERT_TRUE(stub_->ListWorkers(ctx().get(), pb::ListWorkersRequest(), &workers).ok());
  ASSERT_EQ(workers.workers_size(), 1);
  EXPECT_EQ(workers.workers(0).name(), "w1");
  EXPECT_EQ(workers.workers(0).state(), "active");
  EXPECT_EQ(workers.workers(0).running(), 1);
  ASSERT_EQ(workers.workers(0).devices_size(), 1);
  EXPECT_EQ(workers.workers(0).devices(0).kind(), "cpu");
  EXPECT_DOUBLE_EQ(workers.workers(0).devices(0).memory_bytes(), 64e9);

  pb::CompleteJobReply c;
  s = complete("w1", l.run_id(), &c);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(c.duplicate());
  EXPECT_EQ(job_with_hash(l.job().hash()).state(), "succeeded");

  pb::GetResultsRequest gr;
  gr.set_grid("naps");
  pb::GetResultsReply results;
  s = stub_->GetResults(ctx().get(), gr, &results);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(results.grid_spec_json().find("\"naps\""), std::string::npos);
  EXPECT_EQ(results.source(), "naps.json");
  ASSERT_EQ(results.rows_size(), 2);
  EXPECT_EQ(results.rows(0).hash(), l.job().hash());
  EXPECT_EQ(results.rows(0).kind(), "sleep");
  EXPECT_EQ(results.rows(0).params_json(), R"({"seconds":0})");
  EXPECT_EQ(results.rows(0).metric().name(), "slept_s");
  ASSERT_TRUE(results.rows(0).metric().has_value());
  EXPECT_DOUBLE_EQ(results.rows(0).metric().value(), 0.001);
  EXPECT_EQ(results.rows(0).metric().unit(), "s");
  EXPECT_EQ(results.rows(1).metric().name(), "note");
  EXPECT_FALSE(results.rows(1).metric().has_value());
  EXPECT_EQ(results.rows(1).metric().text(), "none");
  EXPECT_EQ(results.rows(0).device_json(), R"({"name":"Test CPU"})");
  EXPECT_EQ(results.rows(0).engine_version(), "test");
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM series"), 2);
  EXPECT_EQ(query_int(db_, "SELECT CAST(wall_ms * 10 AS INTEGER) FROM runs WHERE id = " + std::to_string(l.run_id())),
            15);

  // The other two jobs, in grid order.
  pb::LeaseJobReply l2 = lease("w1");
  ASSERT_TRUE(l2.has_job());
  EXPECT_EQ(l2.job().params_json(), R"({"seconds":0.001})");
}

TEST_F(ServiceTest, StaleAndForeignCompletionsAreRefusedAndWriteNothing) {
  start({}, /*lease_ms=*/200);
  submit(R"({"name": "naps", "axes": {"seconds": [0]}, "measure": ["sleep"]})");
  register_worker("w1");
  register_worker("w2");
  pb::LeaseJobReply l1 = lease("w1");
  ASSERT_TRUE(l1.has_job());

  // Foreign: w2 does not hold the lease.
  pb::CompleteJobReply c;
  grpc::Status s = complete("w2", l1.run_id(), &c);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  pb::RenewLeaseReply r;
  EXPECT_EQ(renew("w2", l1.run_id(), &r).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  pb::FailJobReply f;
  EXPECT_EQ(fail("w2", l1.run_id(), "failed", "x", &f).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(complete("w2", 999999, &c).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(result_rows(), 0);

  // Stale: w1's lease expires, w2 leases the job again, w1's completion is refused.
  const auto t0 = Clock::now();
  pb::LeaseJobReply l2;
  while (elapsed_ms(t0) < 3000) {
    l2 = lease("w2", /*wait_ms=*/200);
    if (l2.has_job()) break;
  }
  ASSERT_TRUE(l2.has_job());
  EXPECT_EQ(l2.job().hash(), l1.job().hash());
  EXPECT_EQ(l2.attempt(), 2);
  EXPECT_NE(l2.run_id(), l1.run_id());
  s = complete("w1", l1.run_id(), &c);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_EQ(renew("w1", l1.run_id(), &r).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(result_rows(), 0);
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM runs WHERE state = 'expired'"), 1);

  s = complete("w2", l2.run_id(), &c);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(result_rows(), 2);
}

TEST_F(ServiceTest, RetriedCompletionIsOkAndDuplicateAndRecordedOnce) {
  start();
  submit();
  register_worker("w1");
  pb::LeaseJobReply l = lease("w1");
  ASSERT_TRUE(l.has_job());
  pb::CompleteJobReply c1, c2;
  ASSERT_TRUE(complete("w1", l.run_id(), &c1).ok());
  EXPECT_FALSE(c1.duplicate());
  grpc::Status s = complete("w1", l.run_id(), &c2);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(c2.duplicate());
  EXPECT_EQ(result_rows(), 2);
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded'"), 1);
  // Someone else quoting that run is still refused.
  EXPECT_EQ(complete("w2", l.run_id(), &c2).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ServiceTest, InvalidCompletionIsRefusedAndTheLeaseStaysHeld) {
  start();
  submit();
  register_worker("w1");
  pb::LeaseJobReply l = lease("w1");
  ASSERT_TRUE(l.has_job());
  pb::CompleteJobRequest req;
  req.set_worker_name("w1");
  req.set_run_id(l.run_id());
  req.add_metrics()->set_name("a");
  req.add_metrics()->set_name("a");
  pb::CompleteJobReply reply;
  EXPECT_EQ(stub_->CompleteJob(ctx().get(), req, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  req.clear_metrics();
  pb::Series* s = req.add_series();
  s->set_name("bad");
  s->add_x(1);
  EXPECT_EQ(stub_->CompleteJob(ctx().get(), req, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  req.clear_series();
  req.set_device_json("{nope");
  EXPECT_EQ(stub_->CompleteJob(ctx().get(), req, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(job_with_hash(l.job().hash()).state(), "leased");
  pb::CompleteJobReply c;
  EXPECT_TRUE(complete("w1", l.run_id(), &c).ok());
}

TEST_F(ServiceTest, OomEndsTheJobAndRepeatedFailuresFailItWithTheLastError) {
  start();
  ServiceTest::submit(R"({"name": "naps", "axes": {"seconds": [0, 0.001]}, "measure": ["sleep"]})");
  register_worker("w1");
  pb::LeaseJobReply a = lease("w1");
  ASSERT_TRUE(a.has_job());
  pb::FailJobReply f;
  grpc::Status s = fail("w1", a.run_id(), "oom", "CUDA out of memory", &f);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(f.job_state(), "oom");
  EXPECT_EQ(job_with_hash(a.job().hash()).state(), "oom");
  // A retried FailJob of that run is answered with the job's state.
  ASSERT_TRUE(fail("w1", a.run_id(), "oom", "CUDA out of memory", &f).ok());
  EXPECT_EQ(f.job_state(), "oom");
  EXPECT_EQ(fail("w1", a.run_id(), "nonsense", "", &f).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // max_attempts 3 (the default): failed, failed, failed -> failed with the last error.
  std::string hash;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    pb::LeaseJobReply b = lease("w1");
    ASSERT_TRUE(b.has_job()) << attempt;
    EXPECT_EQ(b.attempt(), attempt);
    hash = b.job().hash();
    s = fail("w1", b.run_id(), "failed", "crash " + std::to_string(attempt), &f);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(f.job_state(), attempt < 3 ? "pending" : "failed");
  }
  pb::Job j = job_with_hash(hash);
  EXPECT_EQ(j.state(), "failed");
  EXPECT_EQ(j.error(), "crash 3");
  EXPECT_EQ(j.attempts(), 3);
  EXPECT_FALSE(lease("w1").has_job());
}

TEST_F(ServiceTest, GridMaxAttemptsFromTheRequest) {
  start();
  pb::SubmitGridRequest req;
  req.set_grid_text(R"({"name": "once", "axes": {"seconds": [0]}, "measure": ["sleep"]})");
  req.set_source("once.json");
  req.set_max_attempts(1);
  pb::SubmitGridReply reply;
  ASSERT_TRUE(stub_->SubmitGrid(ctx().get(), req, &reply).ok());
  register_worker("w1");
  pb::LeaseJobReply l = lease("w1");
  ASSERT_TRUE(l.has_job());
  pb::FailJobReply f;
  ASSERT_TRUE(fail("w1", l.run_id(), "timeout", "timed out after 1 s", &f).ok());
  EXPECT_EQ(f.job_state(), "timeout");  // its last attempt timed out
  req.set_max_attempts(-1);
  EXPECT_EQ(stub_->SubmitGrid(ctx().get(), req, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, ExpiredLeaseReturnsTheJobToPending) {
  start({}, /*lease_ms=*/200);
  submit(R"({"name": "naps", "axes": {"seconds": [0]}, "measure": ["sleep"]})");
  register_worker("w1");
  pb::LeaseJobReply l = lease("w1");
  ASSERT_TRUE(l.has_job());
  // Renewing keeps it.
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    pb::RenewLeaseReply r;
    ASSERT_TRUE(renew("w1", l.run_id(), &r).ok()) << i;
  }
  EXPECT_EQ(job_with_hash(l.job().hash()).state(), "running");
  // Not renewing: back to pending within lease_ms plus a sweep (lease_ms / 4).
  const auto t0 = Clock::now();
  while (job_with_hash(l.job().hash()).state() != "pending" && elapsed_ms(t0) < 3000) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  pb::Job j = job_with_hash(l.job().hash());
  EXPECT_EQ(j.state(), "pending");
  EXPECT_EQ(j.attempts(), 1);
  EXPECT_LT(elapsed_ms(t0), 1000);
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM runs WHERE state = 'expired'"), 1);
  pb::LeaseJobReply again = lease("w1");
  ASSERT_TRUE(again.has_job());
  EXPECT_EQ(again.attempt(), 2);
}

TEST_F(ServiceTest, CancelledJobsAreReportedInTheRenewReply) {
  start();
  submit();
  register_worker("w1");
  pb::LeaseJobReply l = lease("w1");
  ASSERT_TRUE(l.has_job());
  pb::CancelGridRequest req;
  req.set_name("naps");
  pb::CancelGridReply reply;
  ASSERT_TRUE(stub_->CancelGrid(ctx().get(), req, &reply).ok());
  EXPECT_EQ(reply.cancelled(), 3);
  pb::RenewLeaseReply r;
  grpc::Status s = renew("w1", l.run_id(), &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(r.cancelled());
  // Another worker quoting that run is refused, not told "cancelled".
  EXPECT_EQ(renew("w2", l.run_id(), &r).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  pb::CompleteJobReply c;
  EXPECT_EQ(complete("w1", l.run_id(), &c).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(result_rows(), 0);
  EXPECT_FALSE(lease("w1").has_job());
  req.set_name("nope");
  EXPECT_EQ(stub_->CancelGrid(ctx().get(), req, &reply).error_code(), grpc::StatusCode::NOT_FOUND);
}

// ---- long-polls ----

TEST_F(ServiceTest, LongPollReturnsWhenAJobIsSubmitted) {
  start();
  register_worker("w1");
  const auto t0 = Clock::now();
  auto waiting = std::async(std::launch::async, [&] { return lease("w1", /*wait_ms=*/5000); });
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(waiting.wait_for(milliseconds(0)), std::future_status::timeout);
  submit();
  ASSERT_EQ(waiting.wait_for(milliseconds(3000)), std::future_status::ready);
  pb::LeaseJobReply l = waiting.get();
  EXPECT_TRUE(l.has_job());
  EXPECT_LT(elapsed_ms(t0), 2000);
}

TEST_F(ServiceTest, LongPollWithoutWorkRepliesEmptyAfterWaitMs) {
  start();
  register_worker("w1");
  auto t0 = Clock::now();
  pb::LeaseJobReply l = lease("w1", /*wait_ms=*/300);
  EXPECT_FALSE(l.has_job());
  EXPECT_GE(elapsed_ms(t0), 280);
  EXPECT_LT(elapsed_ms(t0), 2000);
  // wait_ms 0 replies at once.
  t0 = Clock::now();
  EXPECT_FALSE(lease("w1", 0).has_job());
  EXPECT_LT(elapsed_ms(t0), 500);
  // An unregistered worker is told to register.
  grpc::Status s;
  lease("stranger", 0, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ServiceTest, ExpiryWakesALongPoll) {
  start({}, /*lease_ms=*/200);
  submit(R"({"name": "naps", "axes": {"seconds": [0]}, "measure": ["sleep"]})");
  register_worker("w1");
  register_worker("w2");
  ASSERT_TRUE(lease("w1").has_job());
  const auto t0 = Clock::now();
  pb::LeaseJobReply l = lease("w2", /*wait_ms=*/4000);
  EXPECT_TRUE(l.has_job());
  EXPECT_LT(elapsed_ms(t0), 1500);
}

TEST_F(ServiceTest, DrainStopsLeasesAndAnswersAWaitingPoll) {
  start();
  register_worker("w1");
  auto waiting = std::async(std::launch::async, [&] { return lease("w1", /*wait_ms=*/5000); });
  std::this_thread::sleep_for(milliseconds(200));
  pb::DrainRequest req;
  req.set_worker_name("w1");
  pb::DrainReply reply;
  ASSERT_TRUE(stub_->Drain(ctx().get(), req, &reply).ok());
  ASSERT_EQ(waiting.wait_for(milliseconds(2000)), std::future_status::ready);
  EXPECT_FALSE(waiting.get().has_job());
  submit();
  EXPECT_FALSE(lease("w1").has_job());
  pb::ListWorkersReply workers;
  ASSERT_TRUE(stub_->ListWorkers(ctx().get(), pb::ListWorkersRequest(), &workers).ok());
  ASSERT_EQ(workers.workers_size(), 1);
  EXPECT_EQ(workers.workers(0).state(), "draining");
  req.set_worker_name("nobody");
  EXPECT_EQ(stub_->Drain(ctx().get(), req, &reply).error_code(), grpc::StatusCode::NOT_FOUND);
  // Registering again (a restarted worker) makes it active.
  register_worker("w1");
  EXPECT_TRUE(lease("w1").has_job());
}

TEST_F(ServiceTest, SilentWorkersAreMarkedLostAndComeBackWhenTheyCall) {
  start({}, /*lease_ms=*/100);
  register_worker("w1");
  const auto t0 = Clock::now();
  std::string state;
  while (elapsed_ms(t0) < 3000) {
    pb::ListWorkersReply workers;
    ASSERT_TRUE(stub_->ListWorkers(ctx().get(), pb::ListWorkersRequest(), &workers).ok());
    state = workers.workers(0).state();
    if (state == "lost") break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(state, "lost");
  EXPECT_GE(elapsed_ms(t0), 250);
  lease("w1");
  pb::ListWorkersReply workers;
  ASSERT_TRUE(stub_->ListWorkers(ctx().get(), pb::ListWorkersRequest(), &workers).ok());
  EXPECT_EQ(workers.workers(0).state(), "active");
}

// ---- watch ----

TEST_F(ServiceTest, WatchGridStreamsChangesUntilDone) {
  start();
  submit();
  register_worker("w1");
  grpc::ClientContext wctx;
  wctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(8));
  pb::WatchGridRequest wreq;
  wreq.set_name("naps");
  wreq.set_interval_ms(20);
  auto reader = stub_->WatchGrid(&wctx, wreq);
  pb::GridProgress first;
  ASSERT_TRUE(reader->Read(&first));
  EXPECT_EQ(first.status().name(), "naps");
  EXPECT_EQ(first.status().total(), 3);
  EXPECT_EQ(first.status().by_state().at("pending"), 3);
  EXPECT_FALSE(first.done());

  auto worker = std::async(std::launch::async, [&] {
    for (int i = 0; i < 3; ++i) {
      pb::LeaseJobReply l = lease("w1");
      if (!l.has_job()) return false;
      std::this_thread::sleep_for(milliseconds(50));
      pb::CompleteJobReply c;
      if (!complete("w1", l.run_id(), &c).ok()) return false;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return true;
  });
  std::map<std::string, std::set<std::string>> seen;  // hash -> states seen
  pb::GridProgress msg;
  bool done = false;
  int messages = 0;
  while (reader->Read(&msg)) {
    ++messages;
    for (const pb::Job& j : msg.changed()) seen[j.hash()].insert(j.state());
    if (msg.done()) {
      done = true;
      EXPECT_EQ(msg.status().by_state().at("succeeded"), 3);
    }
  }
  grpc::Status s = reader->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(worker.get());
  EXPECT_TRUE(done);
  EXPECT_GE(messages, 2);
  ASSERT_EQ(seen.size(), 3u);
  for (const auto& [hash, states] : seen) EXPECT_TRUE(states.count("succeeded")) << hash;

  // A finished grid: one message, done.
  grpc::ClientContext again;
  again.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto r2 = stub_->WatchGrid(&again, wreq);
  ASSERT_TRUE(r2->Read(&msg));
  EXPECT_TRUE(msg.done());
  EXPECT_FALSE(r2->Read(&msg));
  EXPECT_TRUE(r2->Finish().ok());

  grpc::ClientContext missing;
  wreq.set_name("nope");
  auto r3 = stub_->WatchGrid(&missing, wreq);
  EXPECT_FALSE(r3->Read(&msg));
  EXPECT_EQ(r3->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

// ---- placement ----

TEST(Placement, StoreLeasesOnlyJobsACapacityCanRun) {
  const std::string path =
      (fs::temp_directory_path() / ("gb_placement_" + std::to_string(::getpid()) + ".db")).string();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
  {
    auto store = JobStore::open(path);
    ASSERT_TRUE(store.ok()) << store.message();
    auto grid = parse_grid_text(R"({"name": "p", "axes": {"seconds": [1, 2, 3, 4]}, "measure": ["sleep"]})", "p.json");
    ASSERT_TRUE(grid.ok()) << grid.message();
    // seconds 1: cuda 8 GB; 2: cuda 40 GB; 3: cpu 1 GB; 4: any.
    RequirementFn req = [](const GridJob& j) {
      const double s = j.params.at("seconds").get<double>();
      if (s == 1) return engine::Requirement{"cuda", 8'000'000'000};
      if (s == 2) return engine::Requirement{"cuda", 40'000'000'000};
      if (s == 3) return engine::Requirement{"cpu", 1'000'000'000};
      return engine::Requirement{};
    };
    ASSERT_TRUE((*store)->submit_grid(*grid, false, 3, req).ok());
    EXPECT_EQ(query_int(path, "SELECT COUNT(*) FROM jobs WHERE req_device = 'cuda'"), 2);
    EXPECT_EQ(query_int(path, "SELECT req_memory_bytes FROM v_jobs WHERE json_extract(params_json, '$.seconds') = 2"),
              40'000'000'000);

    DeviceCapacity cpu;
    cpu.add_device("cpu", 64e9);
    DeviceCapacity small_gpu;
    small_gpu.add_device("cuda", 24e9);
    DeviceCapacity big_gpu;
    big_gpu.add_device("cuda", 80e9);
    EXPECT_TRUE(cpu.can_run("any", 0));
    EXPECT_FALSE(cpu.can_run("cuda", 0));
    EXPECT_TRUE(small_gpu.can_run("cuda", 8e9));
    EXPECT_FALSE(small_gpu.can_run("cuda", 40e9));
    EXPECT_FALSE(DeviceCapacity{}.can_run("any", 0));

    // Nobody: all four unplaceable; the CPU can run 3 and 4; CPU + small GPU leave the 40 GB job.
    EXPECT_EQ((*store)->unplaceable(DeviceCapacity{})->at("p"), 4);
    EXPECT_EQ((*store)->unplaceable(cpu)->at("p"), 2);
    DeviceCapacity both = cpu;
    both.merge(small_gpu);
    EXPECT_EQ((*store)->unplaceable(both, "p")->at("p"), 1);
    both.merge(big_gpu);
    EXPECT_TRUE((*store)->unplaceable(both)->empty());

    // A CPU worker never gets the cuda jobs.
    std::vector<double> cpu_got;
    while (true) {
      auto l = (*store)->lease_next("cpu-worker", 60000, "", &cpu);
      ASSERT_TRUE(l.ok()) << l.message();
      if (!l->has_value()) break;
      cpu_got.push_back((*l)->params.at("seconds").get<double>());
    }
    EXPECT_EQ(cpu_got, (std::vector<double>{3, 4}));
    auto l = (*store)->lease_next("small-gpu", 60000, "", &small_gpu);
    ASSERT_TRUE(l.ok() && l->has_value());
    EXPECT_EQ((*l)->params.at("seconds").get<double>(), 1);
    l = (*store)->lease_next("small-gpu", 60000, "", &small_gpu);
    ASSERT_TRUE(l.ok());
    EXPECT_FALSE(l->has_value());  // the 40 GB job does not fit in 24 GB
    l = (*store)->lease_next("big-gpu", 60000, "", &big_gpu);
    ASSERT_TRUE(l.ok() && l->has_value());
    EXPECT_EQ((*l)->params.at("seconds").get<double>(), 2);

    // The registry's requirement for real kinds: any device, no memory.
    EXPECT_EQ(query_int(path, "SELECT 1"), 1);
    const engine::JobKind* sleep = engine::find_job_kind("sleep");
    ASSERT_NE(sleep, nullptr);
    EXPECT_EQ(engine::job_requirement(*sleep, Json{{"seconds", 1}}).device, "any");
    EXPECT_EQ(engine::job_requirement(*sleep, Json{{"seconds", 1}}).memory_bytes, 0);
    EXPECT_FALSE((*store)
                     ->submit_grid(*grid, false, 3,
                                   [](const GridJob&) {
                                     return engine::Requirement{"tpu", 0};
                                   })
                     .ok());
  }
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
}

TEST_F(ServiceTest, CudaJobsAreNotLeasedToCpuWorkersAndAreCountedUnplaceable) {
  ServiceOptions so;
  so.requirement = [](const GridJob& j) {
    if (j.params.at("seconds").get<double>() == 0) return engine::Requirement{"cuda", 16'000'000'000};
    return engine::Requirement{};
  };
  start(std::move(so));
  register_worker("cpu-1", "cpu", 64e9);
  pb::SubmitGridReply sub = submit();
  EXPECT_EQ(sub.unplaceable(), 1);
  EXPECT_EQ(grid_status().unplaceable(), 1);

  // The CPU worker gets the two 'any' jobs, never the cuda one.
  for (int i = 0; i < 2; ++i) {
    pb::LeaseJobReply l = lease("cpu-1");
    ASSERT_TRUE(l.has_job());
    EXPECT_NE(l.job().params_json(), R"({"seconds":0})");
  }
  EXPECT_FALSE(lease("cpu-1", /*wait_ms=*/100).has_job());
  register_worker("gpu-small", "cuda", 8e9);
  EXPECT_FALSE(lease("gpu-small").has_job());
  EXPECT_EQ(grid_status().unplaceable(), 1);
  register_worker("gpu-big", "cuda", 80e9);
  EXPECT_EQ(grid_status().unplaceable(), 0);
  pb::LeaseJobReply l = lease("gpu-big");
  ASSERT_TRUE(l.has_job());
  EXPECT_EQ(l.job().params_json(), R"({"seconds":0})");
}

// ---- restart ----

TEST_F(ServiceTest, RestartKeepsLeasesForTheirWorkersToRenew) {
  start({}, /*lease_ms=*/300);
  submit();
  register_worker("w1");
  pb::LeaseJobReply l = lease("w1");
  ASSERT_TRUE(l.has_job());
  stop();
  std::this_thread::sleep_for(milliseconds(600));  // longer than the lease: it would have expired
  start({}, /*lease_ms=*/300);
  pb::RenewLeaseReply r;
  grpc::Status s = renew("w1", l.run_id(), &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  pb::CompleteJobReply c;
  ASSERT_TRUE(complete("w1", l.run_id(), &c).ok());
  EXPECT_EQ(job_with_hash(l.job().hash()).state(), "succeeded");
  // The worker is known after the restart without registering again.
  EXPECT_TRUE(lease("w1").has_job());
}

// ---- auth ----

TEST_F(ServiceTest, TokenIsRequiredOnEveryRpcWhenConfigured) {
  ServiceOptions so;
  so.token = "s3cret-token";
  start(std::move(so));
  auto call = [&](const std::string& auth) {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!auth.empty()) c.AddMetadata("authorization", auth);
    pb::ListGridsReply reply;
    return stub_->ListGrids(&c, pb::ListGridsRequest(), &reply);
  };
  EXPECT_EQ(call("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("Bearer wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("Bearer s3cret-token-and-more").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("s3cret-token").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(call("Bearer s3cret-token").ok());

  // A worker with a wrong token is refused at registration and at lease time.
  {
    grpc::ClientContext c;
    c.AddMetadata("authorization", "Bearer wrong");
    pb::RegisterWorkerRequest req;
    req.set_name("w1");
    pb::RegisterWorkerReply reply;
    EXPECT_EQ(stub_->RegisterWorker(&c, req, &reply).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext c;
    pb::LeaseJobRequest req;
    req.set_worker_name("w1");
    pb::LeaseJobReply reply;
    EXPECT_EQ(stub_->LeaseJob(&c, req, &reply).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  // With the token (ctx() adds it) everything works.
  submit();
  register_worker("w1");
  EXPECT_TRUE(lease("w1").has_job());
  pb::ListWorkersReply workers;
  EXPECT_TRUE(stub_->ListWorkers(ctx().get(), pb::ListWorkersRequest(), &workers).ok());
}

TEST_F(ServiceTest, HealthServiceIsServing) {
  start();
  grpc::GenericStub generic(channel_);
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  // grpc.health.v1.HealthCheckRequest{service: ""} is the empty message; the reply
  // HealthCheckResponse{status: SERVING (1)} is the bytes 08 01.
  grpc::Slice empty(std::string{});
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  generic.UnaryCall(&c, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                    [&](grpc::Status s) { done.set_value(s); });
  grpc::Status s = done.get_future().get();
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

TEST(Auth, TokenComparison) {
  TokenAuth off("");
  EXPECT_FALSE(off.enabled());
  EXPECT_TRUE(off.accepts(""));
  TokenAuth on("abc");
  EXPECT_TRUE(on.enabled());
  EXPECT_TRUE(on.accepts("Bearer abc"));
  EXPECT_TRUE(on.accepts("bearer abc"));
  EXPECT_FALSE(on.accepts("Bearer abcd"));
  EXPECT_FALSE(on.accepts("Bearer ab"));
  EXPECT_FALSE(on.accepts("Bearer "));
  EXPECT_FALSE(on.accepts("abc"));
  EXPECT_FALSE(on.accepts(""));
}

TEST(Auth, LoadToken) {
  const fs::path dir = fs::temp_directory_path() / ("gb_token_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream(dir / "token") << "  tok-123 \n";
    std::ofstream(dir / "empty") << "\n";
  }
  auto t = load_token((dir / "token").string(), "GB_TEST_TOKEN_UNSET");
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(*t, "tok-123");
  auto e = load_token((dir / "empty").string(), nullptr);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.message().find("empty"), std::string::npos);
  auto missing = load_token((dir / "missing").string(), nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find((dir / "missing").string()), std::string::npos);
  ::setenv("GB_TEST_TOKEN_SET", "from-env\n", 1);
  EXPECT_EQ(*load_token("", "GB_TEST_TOKEN_SET"), "from-env");
  EXPECT_EQ(*load_token("", "GB_TEST_TOKEN_UNSET"), "");
  fs::remove_all(dir);
}

TEST(Auth, ListenAddressesAndTheBindPolicy) {
  auto a = parse_listen_address("127.0.0.1:7878");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7878);
  EXPECT_TRUE(is_loopback(*a));
  auto v6 = parse_listen_address("[::1]:0");
  ASSERT_TRUE(v6.ok()) << v6.message();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(is_loopback(*v6));
  EXPECT_EQ(v6->display(5000), "[::1]:5000");
  EXPECT_TRUE(is_loopback(*parse_listen_address("localhost:1")));
  EXPECT_TRUE(is_loopback(*parse_listen_address("127.1.2.3:1")));
  EXPECT_TRUE(is_loopback(*parse_listen_address("unix:/tmp/gb.sock")));
  EXPECT_FALSE(is_loopback(*parse_listen_address("0.0.0.0:7878")));
  EXPECT_FALSE(is_loopback(*parse_listen_address("[::]:7878")));
  EXPECT_FALSE(is_loopback(*parse_listen_address("10.1.2.3:7878")));
  EXPECT_FALSE(is_loopback(*parse_listen_address("gpu-box:7878")));
  for (const char* bad : {"", "7878", ":7878", "host:", "host:99999", "host:x", "::1:80", "[::1]", "unix:"}) {
    EXPECT_FALSE(parse_listen_address(bad).ok()) << bad;
  }
  const ListenAddress any = *parse_listen_address("0.0.0.0:0");
  EXPECT_FALSE(check_bind_policy(any, /*has_token=*/false, /*insecure=*/false).ok());
  EXPECT_TRUE(check_bind_policy(any, /*has_token=*/true, /*insecure=*/false).ok());
  EXPECT_TRUE(check_bind_policy(any, /*has_token=*/false, /*insecure=*/true).ok());

  // The server applies it before opening anything.
  ServerOptions o;
  o.listen = "0.0.0.0:0";
  o.db_path = (fs::temp_directory_path() / ("gb_policy_" + std::to_string(::getpid()) + ".db")).string();
  auto refused = CoordinatorServer::start(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("--insecure"), std::string::npos) << refused.message();
  EXPECT_FALSE(fs::exists(o.db_path));
  o.tls.cert = "/nonexistent/cert.pem";
  o.tls.key = "/nonexistent/key.pem";
  o.listen = "127.0.0.1:0";
  auto no_tls = CoordinatorServer::start(o);
  ASSERT_FALSE(no_tls.ok());
  EXPECT_NE(no_tls.message().find("/nonexistent/cert.pem"), std::string::npos) << no_tls.message();
  o.tls = {};
  o.tls.client_ca = "/nonexistent/ca.pem";
  EXPECT_FALSE(CoordinatorServer::start(o).ok());
}

TEST(Auth, TlsServerWithAClientThatTrustsIt) {
  // A self-signed certificate for localhost, made with the openssl command.
  if (std::system("openssl version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  const fs::path dir = fs::temp_directory_path() / ("gb_tls_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.db_path = (dir / "tls.db").string();
  o.tls.cert = cert;
  o.tls.key = key;
  auto server = CoordinatorServer::start(o);
  ASSERT_TRUE(server.ok()) << server.message();
  std::ifstream in(cert);
  std::stringstream pem;
  pem << in.rdbuf();
  grpc::SslCredentialsOptions copts;
  copts.pem_root_certs = pem.str();
  auto stub = pb::Coordinator::NewStub(grpc::CreateChannel((*server)->address(), grpc::SslCredentials(copts)));
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  pb::ListGridsReply reply;
  grpc::Status s = stub->ListGrids(&c, pb::ListGridsRequest(), &reply);
  EXPECT_TRUE(s.ok()) << s.error_message();
  // A plaintext client cannot talk to it.
  auto plain = pb::Coordinator::NewStub(grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext c2;
  c2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  EXPECT_FALSE(plain->ListGrids(&c2, pb::ListGridsRequest(), &reply).ok());
  (*server)->shutdown(200);
  (*server)->wait();
  server->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gb::coord

namespace gb::coord {
namespace {

// A version-1 file (as the foundation wrote it) with jobs, a lease and a worker is
// upgraded in place: requirements default to any/0, the lease order is filled in,
// worker states are renamed, and leasing continues where it was.
TEST(Migration, UpgradesAVersion1Database) {
  const std::string path = (fs::temp_directory_path() / ("gb_migrate_" + std::to_string(::getpid()) + ".db")).string();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
  int64_t held_run = 0;
  {
    auto store = JobStore::open(path);
    ASSERT_TRUE(store.ok()) << store.message();
    auto grid = parse_grid_text(R"({"name": "old", "axes": {"seconds": [1, 2, 3]}, "measure": ["sleep"]})", "old.json");
    ASSERT_TRUE(grid.ok()) << grid.message();
    ASSERT_TRUE((*store)->submit_grid(*grid, false).ok());
    auto l = (*store)->lease_next("w-old", 60000);
    ASSERT_TRUE(l.ok() && l->has_value());
    held_run = (*l)->run_id;
  }
  // Back to version 1: what migration 2 added goes.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, testing::kUndoMigration7, nullptr, nullptr, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, testing::kUndoMigration6, nullptr, nullptr, nullptr), SQLITE_OK);
    const char* downgrade = R"sql(
      BEGIN;
      DROP VIEW v_jobs;
      DROP INDEX jobs_queue;
      ALTER TABLE jobs DROP COLUMN queue_key;
      ALTER TABLE jobs DROP COLUMN req_device;
      ALTER TABLE jobs DROP COLUMN req_memory_bytes;
      ALTER TABLE runs DROP COLUMN progress;
      ALTER TABLE runs DROP COLUMN progress_message;
      ALTER TABLE workers DROP COLUMN engine_version;
      CREATE INDEX jobs_state ON jobs(state);
      CREATE VIEW v_jobs AS SELECT g.name AS grid, gj.position AS position, j.id AS job_id,
        j.hash AS job_hash, j.kind AS kind, j.params_json AS params_json, j.repeat AS repeat,
        j.state AS state, j.attempts AS attempts, j.max_attempts AS max_attempts,
        j.lease_owner AS lease_owner, j.lease_expires_ms AS lease_expires_ms, j.error AS error,
        j.result_run_id AS result_run_id
        FROM grids g JOIN grid_jobs gj ON gj.grid_id = g.id JOIN jobs j ON j.id = gj.job_id;
      INSERT INTO workers(name, device_json, slots, registered_ms, last_seen_ms, state)
        VALUES('w-old', '[]', 1, 1, 1, 'online'), ('w-gone', '[]', 1, 1, 1, 'offline');
      DELETE FROM schema_migrations WHERE version >= 2;
      PRAGMA user_version = 1;
      COMMIT;)sql";
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, downgrade, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_close_v2(db);
  }
  ASSERT_EQ(query_int(path, "PRAGMA user_version"), 1);
  {
    auto store = JobStore::open(path);
    ASSERT_TRUE(store.ok()) << store.message();
    EXPECT_EQ((*store)->schema_version(), job_store_schema_version());  // 2 and every later migration
    EXPECT_EQ(query_int(path, "SELECT COUNT(*) FROM jobs WHERE req_device = 'any' AND req_memory_bytes = 0"), 3);
    EXPECT_EQ(query_int(path, "SELECT COUNT(*) FROM jobs WHERE queue_key IS NULL"), 0);
    EXPECT_EQ(query_int(path, "SELECT COUNT(*) FROM v_jobs WHERE req_device = 'any'"), 3);
    EXPECT_EQ(query_int(path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'jobs_state'"), 0);
    auto workers = (*store)->list_workers();
    ASSERT_TRUE(workers.ok()) << workers.message();
    ASSERT_EQ(workers->size(), 2u);
    EXPECT_EQ((*workers)[0].state, "active");
    EXPECT_EQ((*workers)[1].state, "lost");
    // The old lease is still held; the next job in order is leased next.
    auto hb = (*store)->heartbeat(held_run, "w-old", 60000, true, 0.25, "quarter");
    ASSERT_TRUE(hb.ok()) << hb.message();
    EXPECT_TRUE(hb->started);
    EXPECT_EQ(
        query_int(path, "SELECT CAST(progress * 100 AS INTEGER) FROM runs WHERE id = " + std::to_string(held_run)), 25);
    auto next = (*store)->lease_next("w-new", 60000);
    ASSERT_TRUE(next.ok() && next->has_value());
    EXPECT_EQ((*next)->params.at("seconds").get<double>(), 2);
  }
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
}

}  // namespace
}  // namespace gb::coord

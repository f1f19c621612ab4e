// The coordinator's view of its workers (issue 15): a silent worker is lost
// whatever its state, a drained one that exited included; its last call survives a
// coordinator restart; a second live process under one worker name (on another
// host) is refused.
#include <gtest/gtest.h>

#include <thread>

#include "tests/coordinator/service/service_fixture.h"

namespace gb::coord {
namespace {

using namespace service_testing;

pb::WorkerStatus worker_named(pb::Coordinator::Stub& stub, const std::string& name) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  pb::ListWorkersReply reply;
  EXPECT_TRUE(stub.ListWorkers(&ctx, pb::ListWorkersRequest(), &reply).ok());
  for (const auto& w : reply.workers())
    if (w.name() == name) return w;
  ADD_FAILURE() << "no worker " << name;
  return {};
}

TEST_F(ServiceTest, ADrainedWorkerThatFallsSilentIsLost) {
  start({}, /*lease_ms=*/100);
  register_worker("w1");
  pb::DrainRequest req;
  req.set_worker_name("w1");
  pb::DrainReply reply;
  ASSERT_TRUE(stub_->Drain(ctx().get(), req, &reply).ok());
  EXPECT_EQ(worker_named(*stub_, "w1").state(), "draining");
  // No call for 3 x lease_ms: lost, not draining forever.
  const auto t0 = Clock::now();
  std::string state;
  while (elapsed_ms(t0) < 3000 && (state = worker_named(*stub_, "w1").state()) != "lost")
    std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(state, "lost");
  EXPECT_GE(elapsed_ms(t0), 250);
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM workers WHERE name = 'w1' AND state = 'lost'"), 1);
}

TEST_F(ServiceTest, LastSeenSurvivesARestartAndADeadWorkerIsLostAfterIt) {
  start({}, /*lease_ms=*/200);
  register_worker("dead");
  const int64_t seen = worker_named(*stub_, "dead").last_seen_ms();
  ASSERT_GT(seen, 0);
  stop();
  std::this_thread::sleep_for(milliseconds(300));
  start({}, /*lease_ms=*/200);
  // The restarted coordinator shows its last call, not "seen just now".
  pb::WorkerStatus w = worker_named(*stub_, "dead");
  EXPECT_EQ(w.last_seen_ms(), seen);
  EXPECT_EQ(w.state(), "active");  // given 3 x lease_ms from the restart to call again
  const auto t0 = Clock::now();
  while (elapsed_ms(t0) < 3000 && worker_named(*stub_, "dead").state() != "lost")
    std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(worker_named(*stub_, "dead").state(), "lost");
  EXPECT_GE(elapsed_ms(t0), 500);  // not before 3 x lease_ms after the restart
  EXPECT_EQ(worker_named(*stub_, "dead").last_seen_ms(), seen);
}

TEST_F(ServiceTest, ASecondLiveProcessUnderOneWorkerNameIsRefused) {
  start({}, /*lease_ms=*/2000);
  register_worker("w", "cpu", 64e9, "hostA 100");
  grpc::Status s;
  register_worker("w", "cpu", 64e9, "hostB 200", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(s.error_message().find("worker name w is held by another live worker (hostA 100"), std::string::npos)
      << s.error_message();
  EXPECT_NE(s.error_message().find("give each worker its own --name"), std::string::npos);
  // The same process again (a reconnect), or a new process on the same host (the
  // old one restarted: gridbench-worker keeps names apart on one host): accepted.
  register_worker("w", "cpu", 64e9, "hostA 100");
  register_worker("w", "cpu", 64e9, "hostA 101");
  // A registration that names no instance is not checked.
  register_worker("w", "cpu", 64e9, "");
}

}  // namespace
}  // namespace gb::coord

// What a user sees while jobs wait (issue 15): WatchGrid sends the grid's status
// again while nothing moves, with the unplaceable count and how many workers are
// registered; SubmitGrid says how many are.
#include <gtest/gtest.h>

#include "tests/coordinator/service/service_fixture.h"

namespace gb::coord {
namespace {

using namespace service_testing;

TEST_F(ServiceTest, SubmitAndWatchSayWhenNoWorkerIsRegistered) {
  start();
  pb::SubmitGridReply sub = submit();
  EXPECT_EQ(sub.queued(), 3);
  EXPECT_EQ(sub.unplaceable(), 3);
  EXPECT_EQ(sub.active_workers(), 0);

  grpc::ClientContext wctx;
  wctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  pb::WatchGridRequest wreq;
  wreq.set_name("naps");
  wreq.set_interval_ms(10);
  wreq.set_heartbeat_ms(100);
  auto reader = stub_->WatchGrid(&wctx, wreq);
  pb::GridProgress msg;
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_EQ(msg.status().unplaceable(), 3);
  EXPECT_EQ(msg.status().active_workers(), 0);
  // Nothing moves: the status comes again every heartbeat.
  const auto t0 = Clock::now();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(reader->Read(&msg));
    EXPECT_EQ(msg.changed_size(), 0);
    EXPECT_FALSE(msg.done());
    EXPECT_EQ(msg.status().by_state().at("pending"), 3);
    EXPECT_EQ(msg.status().unplaceable(), 3);
  }
  EXPECT_GE(elapsed_ms(t0), 250);
  EXPECT_LT(elapsed_ms(t0), 2500);
  wctx.TryCancel();
  while (reader->Read(&msg)) {
  }
  (void)reader->Finish();

  // A worker registers: a watch hears it at once (long before its heartbeat), and
  // nothing is unplaceable any more.
  grpc::ClientContext w2;
  w2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  wreq.set_heartbeat_ms(4000);
  auto second = stub_->WatchGrid(&w2, wreq);
  ASSERT_TRUE(second->Read(&msg));
  EXPECT_EQ(msg.status().active_workers(), 0);
  register_worker("w1");
  const auto t1 = Clock::now();
  ASSERT_TRUE(second->Read(&msg));
  EXPECT_LT(elapsed_ms(t1), 2000);
  EXPECT_EQ(msg.status().active_workers(), 1);
  EXPECT_EQ(msg.status().unplaceable(), 0);
  w2.TryCancel();
  while (second->Read(&msg)) {
  }
  (void)second->Finish();

  pb::SubmitGridReply again = submit();
  EXPECT_EQ(again.active_workers(), 1);
  EXPECT_EQ(again.unplaceable(), 0);
}

}  // namespace
}  // namespace gb::coord

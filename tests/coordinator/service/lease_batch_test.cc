// LeaseJob with max_jobs: up to that many jobs in one call, each its own run and
// lease, in grid order, never one job twice; and FailJob's "invalid" outcome,
// which ends the job at once in its own state.
#include <gtest/gtest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "tests/coordinator/service/service_fixture.h"

namespace gb::coord {
namespace {

using namespace service_testing;

pb::LeaseJobReply lease_up_to(pb::Coordinator::Stub& stub, const std::string& worker, int max_jobs,
                              grpc::Status* status) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  pb::LeaseJobRequest req;
  req.set_worker_name(worker);
  req.set_max_jobs(max_jobs);
  pb::LeaseJobReply reply;
  *status = stub.LeaseJob(&ctx, req, &reply);
  return reply;
}

TEST_F(ServiceTest, LeaseJobLeasesUpToMaxJobsInOneCall) {
  start();
  submit(R"({"name": "naps", "axes": {"seconds": [0, 0.001, 0.002, 0.003, 0.004]}, "measure": ["sleep"]})");
  register_worker("w1");
  grpc::Status s;
  pb::LeaseJobReply a = lease_up_to(*stub_, "w1", 3, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(a.has_job());
  ASSERT_EQ(a.more_size(), 2);
  std::vector<const pb::LeaseJobReply*> got = {&a, &a.more(0), &a.more(1)};
  std::set<int64_t> runs;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_DOUBLE_EQ(nlohmann::json::parse(got[i]->job().params_json()).at("seconds").get<double>(),
                     0.001 * static_cast<double>(i));  // in grid order
    EXPECT_EQ(got[i]->attempt(), 1);
    EXPECT_GT(got[i]->lease_expires_ms(), 0);
    if (i > 0) {
      EXPECT_EQ(got[i]->more_size(), 0);  // the further leases carry none of their own
    }
    runs.insert(got[i]->run_id());
  }
  EXPECT_EQ(runs.size(), 3u);
  EXPECT_EQ(jobs("naps", "leased").size(), 3u);
  // The rest: fewer than asked for; then none.
  pb::LeaseJobReply b = lease_up_to(*stub_, "w1", 64, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(b.has_job());
  EXPECT_EQ(b.more_size(), 1);
  pb::LeaseJobReply none = lease_up_to(*stub_, "w1", 3, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(none.has_job());
  EXPECT_EQ(none.more_size(), 0);
  // Each lease is completed on its own.
  pb::CompleteJobReply c;
  for (const pb::LeaseJobReply* r : got) EXPECT_TRUE(complete("w1", r->run_id(), &c).ok());
  EXPECT_TRUE(complete("w1", b.run_id(), &c).ok());
  EXPECT_TRUE(complete("w1", b.more(0).run_id(), &c).ok());
  EXPECT_EQ(jobs("naps", "succeeded").size(), 5u);
  lease_up_to(*stub_, "w1", -1, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, AnInvalidOutcomeEndsTheJobInvalidWithoutRetries) {
  start();
  submit(R"({"name": "naps", "axes": {"seconds": [0]}, "measure": ["sleep"]})");
  register_worker("w1");
  pb::LeaseJobReply a = lease("w1");
  ASSERT_TRUE(a.has_job());
  pb::FailJobReply f;
  grpc::Status s = fail("w1", a.run_id(), "invalid", "$.params.dataset: x.txt does not exist on this machine", &f);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(f.job_state(), "invalid");  // attempt 1 of 3, not retried
  pb::Job j = jobs("naps").at(0);
  EXPECT_EQ(j.state(), "invalid");
  EXPECT_EQ(j.error(), "$.params.dataset: x.txt does not exist on this machine");
  EXPECT_EQ(j.attempts(), 1);
  // A retried FailJob of that run is answered with the job's state.
  ASSERT_TRUE(fail("w1", a.run_id(), "invalid", "again", &f).ok());
  EXPECT_EQ(f.job_state(), "invalid");
  EXPECT_FALSE(lease("w1").has_job());
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM runs WHERE state = 'invalid'"), 1);
}

}  // namespace
}  // namespace gb::coord

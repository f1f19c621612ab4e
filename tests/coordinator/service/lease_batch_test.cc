// LeaseJob with max_jobs: up to that many jobs in one call, each its own run and
// lease, in grid order, never one job twice; CompleteJobs: several completions in
// one call and one transaction, each answered as CompleteJob would; and FailJob's
// "invalid" outcome, which ends the job at once in its own state.
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

// GetResults in pages of max_jobs jobs: the pages' rows are the whole reply's, in
// order; a page counts jobs without a result too; old clients (max_jobs 0) get all.
TEST_F(ServiceTest, GetResultsAnswersInPagesOfMaxJobs) {
  start();
  submit(R"({"name": "naps", "axes": {"seconds": [0, 0.001, 0.002, 0.003, 0.004]}, "measure": ["sleep"]})");
  register_worker("w1");
  grpc::Status s;
  pb::LeaseJobReply a = lease_up_to(*stub_, "w1", 5, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(a.more_size(), 4);
  pb::CompleteJobReply c;
  for (const pb::LeaseJobReply* r : {static_cast<const pb::LeaseJobReply*>(&a), &a.more(0), &a.more(2), &a.more(3)})
    ASSERT_TRUE(complete("w1", r->run_id(), &c).ok());
  auto get = [&](int max_jobs, int64_t from) {
    pb::GetResultsRequest req;
    req.set_grid("naps");
    req.set_max_jobs(max_jobs);
    req.set_from_position(from);
    pb::GetResultsReply reply;
    grpc::ClientContext ctx;
    s = stub_->GetResults(&ctx, req, &reply);
    return reply;
  };
  auto keys = [](const pb::GetResultsReply& r, std::vector<std::string>& out) {
    for (const auto& row : r.rows()) out.push_back(row.hash() + "/" + row.metric().name());
  };
  pb::GetResultsReply all = get(0, 0);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(all.next_from_position(), 0);
  std::vector<std::string> whole, paged;
  keys(all, whole);
  ASSERT_FALSE(whole.empty());
  std::vector<int64_t> starts;
  int64_t from = 0;
  do {
    starts.push_back(from);
    pb::GetResultsReply page = get(2, from);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_NE(page.grid_spec_json().find("\"naps\""), std::string::npos);
    keys(page, paged);
    ASSERT_TRUE(page.next_from_position() == 0 || page.next_from_position() > from);
    from = page.next_from_position();
  } while (from != 0 && starts.size() < 10);
  EXPECT_EQ(starts, (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(paged, whole);
  EXPECT_EQ(get(2, 2).rows_size() * 2, all.rows_size() / 2);  // positions 2 and 3: one job with results
  get(-1, 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  get(2, -3);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

pb::CompleteJobRequest one_metric(int64_t run_id, double value) {
  pb::CompleteJobRequest c;
  c.set_run_id(run_id);
  pb::Metric* m = c.add_metrics();
  m->set_name("slept_s");
  m->set_value(value);
  m->set_unit("s");
  c.set_engine_version("test");
  return c;
}

pb::CompleteJobsReply complete_all(pb::Coordinator::Stub& stub, const std::string& worker,
                                   const std::vector<pb::CompleteJobRequest>& completions, grpc::Status* status) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  pb::CompleteJobsRequest req;
  req.set_worker_name(worker);
  for (const auto& c : completions) *req.add_completions() = c;
  pb::CompleteJobsReply reply;
  *status = stub.CompleteJobs(&ctx, req, &reply);
  return reply;
}

TEST_F(ServiceTest, CompleteJobsRecordsEachCompletionOnItsOwnInOneCall) {
  start();
  submit(R"({"name": "naps", "axes": {"seconds": [0, 0.001, 0.002, 0.003]}, "measure": ["sleep"]})");
  register_worker("w1");
  register_worker("w2");
  // w1 loses its first lease: it expires and w2 holds the job now.
  pb::LeaseJobReply lost = lease("w1");
  ASSERT_TRUE(lost.has_job());
  ASSERT_TRUE(server_->store().expire_leases(now_ms() + 3600000).ok());
  pb::LeaseJobReply taken = lease("w2");
  ASSERT_TRUE(taken.has_job());
  ASSERT_EQ(taken.job().hash(), lost.job().hash());
  grpc::Status s;
  pb::LeaseJobReply mine = lease_up_to(*stub_, "w1", 3, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(mine.more_size(), 2);
  const int64_t a = mine.run_id(), b = mine.more(0).run_id(), c = mine.more(1).run_id();

  // a; b with a bad record (a metric twice); the lost lease; c; a again in the same call.
  pb::CompleteJobRequest bad_b = one_metric(b, 2);
  *bad_b.add_metrics() = bad_b.metrics(0);
  pb::CompleteJobsReply r = complete_all(
      *stub_, "w1", {one_metric(a, 1), bad_b, one_metric(lost.run_id(), 9), one_metric(c, 3), one_metric(a, 1)}, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(r.results_size(), 5);
  const std::vector<int64_t> runs = {a, b, lost.run_id(), c, a};
  const std::vector<grpc::StatusCode> codes = {grpc::StatusCode::OK, grpc::StatusCode::INVALID_ARGUMENT,
                                               grpc::StatusCode::FAILED_PRECONDITION, grpc::StatusCode::OK,
                                               grpc::StatusCode::OK};
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(r.results(i).run_id(), runs[static_cast<size_t>(i)]) << i;
    EXPECT_EQ(r.results(i).code(), static_cast<int>(codes[static_cast<size_t>(i)])) << i << ": " << r.results(i).error();
    EXPECT_EQ(r.results(i).duplicate(), i == 4) << i;  // a, completed twice: recorded once
  }
  EXPECT_NE(r.results(1).error().find("reported twice"), std::string::npos) << r.results(1).error();
  EXPECT_NE(r.results(2).error().find("not leased by w1"), std::string::npos) << r.results(2).error();
  // Only a's and c's results, once each; b is still w1's, the lost job w2's.
  EXPECT_EQ(result_rows(), 2);
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM results WHERE run_id = " + std::to_string(a)), 1);
  EXPECT_EQ(query_int(db_, "SELECT COUNT(*) FROM results WHERE run_id = " + std::to_string(lost.run_id())), 0);
  EXPECT_EQ(jobs("naps", "succeeded").size(), 2u);
  EXPECT_EQ(jobs("naps", "leased").size(), 2u);

  // b again, well formed, with retries of a and c; then w2's own in a call of one.
  r = complete_all(*stub_, "w1", {one_metric(b, 2), one_metric(c, 3), one_metric(a, 1)}, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(r.results_size(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r.results(i).code(), 0) << i << ": " << r.results(i).error();
  EXPECT_FALSE(r.results(0).duplicate());
  EXPECT_TRUE(r.results(1).duplicate());
  EXPECT_TRUE(r.results(2).duplicate());
  // w2 cannot complete w1's runs; its own goes through.
  r = complete_all(*stub_, "w2", {one_metric(taken.run_id(), 4), one_metric(b, 5)}, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.results(0).code(), 0) << r.results(0).error();
  EXPECT_EQ(r.results(1).code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_EQ(jobs("naps", "succeeded").size(), 4u);
  EXPECT_EQ(result_rows(), 4);
  EXPECT_EQ(query_int(db_, "SELECT value FROM results WHERE run_id = " + std::to_string(b)), 2);

  // Past the limit: refused whole, nothing looked at.
  std::vector<pb::CompleteJobRequest> many(static_cast<size_t>(kMaxCompletionsPerCall) + 1, one_metric(999999, 0));
  complete_all(*stub_, "w1", many, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  r = complete_all(*stub_, "w1", {one_metric(999999, 0)}, &s);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(r.results(0).code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  r = complete_all(*stub_, "w1", {}, &s);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(r.results_size(), 0);
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

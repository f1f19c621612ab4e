// JobStore's batches (job_store_batches.cc): lease_batch takes only the named
// kinds, in grid order, marked running, up to the limit; complete_batch records
// every result as complete() does, and refuses the whole batch when one run is not
// held by the caller; run_batch_in_process computes and records a batch in one
// transaction, a success with one run and no lease, a failure as fail() ends it.
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "coordinator/store/job_store.h"

namespace gb::coord {
namespace {

namespace fs = std::filesystem;

class JobStoreBatchesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::temp_directory_path() / ("gb_job_store_batches_" + std::to_string(::getpid()) + "_" +
                                          ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db"))
                .string();
    remove_files();
    auto s = JobStore::open(path_);
    ASSERT_TRUE(s.ok()) << s.message();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    remove_files();
  }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::error_code ec;
      fs::remove(path_ + suffix, ec);
    }
  }
  // 5 roofline jobs r0..r4 with a sleep job between each.
  Grid mixed_grid() {
    Grid g;
    g.name = "mixed";
    g.source = "mixed.json";
    g.spec = nlohmann::ordered_json{{"name", "mixed"}};
    for (int i = 0; i < 5; ++i) {
      g.jobs.push_back(GridJob{"r" + std::to_string(i), "roofline", Json{{"context", i + 1}}, 0});
      g.jobs.push_back(GridJob{"s" + std::to_string(i), "sleep", Json{{"seconds", i}}, 0});
    }
    return g;
  }
  std::map<std::string, int64_t> states() {
    auto s = store_->grid_summary("mixed");
    EXPECT_TRUE(s.ok() && s->has_value());
    return s.ok() && s->has_value() ? (*s)->by_state : std::map<std::string, int64_t>{};
  }
  static RunRecord record(double v) {
    RunRecord r;
    r.metrics.push_back({"decode_B_ms", v, "ms", ""});
    r.device = Json{{"name", "rtx4090"}};
    r.engine_version = "test";
    r.wall_ms = 0.1;
    return r;
  }
  std::string path_;
  std::unique_ptr<JobStore> store_;
};

TEST_F(JobStoreBatchesTest, LeasesOnlyTheNamedKindsInGridOrderAndCompletesThemInOneGo) {
  ASSERT_TRUE(store_->submit_grid(mixed_grid(), false).ok());
  Result<std::vector<Lease>> first = store_->lease_batch("me", 60000, "mixed", {"roofline"}, 3);
  ASSERT_TRUE(first.ok()) << first.message();
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ((*first)[0].hash, "r0");
  EXPECT_EQ((*first)[2].hash, "r2");
  EXPECT_EQ((*first)[1].params, (Json{{"context", 2}}));
  EXPECT_EQ((*first)[0].attempt, 1);
  EXPECT_EQ(states()["running"], 3);

  std::vector<std::pair<int64_t, RunRecord>> done;
  for (const Lease& l : *first) done.emplace_back(l.run_id, record(static_cast<double>(l.run_id)));
  ASSERT_TRUE(store_->complete_batch("me", done).ok());
  EXPECT_EQ(states()["succeeded"], 3);

  Result<std::vector<Lease>> rest = store_->lease_batch("me", 60000, "mixed", {"roofline"}, 100);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[0].hash, "r3");
  // A batch with one run this owner does not hold writes nothing at all.
  std::vector<std::pair<int64_t, RunRecord>> bad = {{(*rest)[0].run_id, record(1)}, {(*rest)[1].run_id, record(2)},
                                                    {first->front().run_id, record(3)}};
  Status refused = store_->complete_batch("me", bad);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(states()["succeeded"], 3);
  EXPECT_EQ(states()["running"], 2);
  EXPECT_FALSE(store_->complete_batch("someone else", {{(*rest)[0].run_id, record(1)}}).ok());
  ASSERT_TRUE(store_->complete_batch("me", {{(*rest)[0].run_id, record(1)}, {(*rest)[1].run_id, record(2)}}).ok());
  EXPECT_EQ(states()["succeeded"], 5);
  EXPECT_EQ(states()["pending"], 5);  // the sleep jobs are untouched
  Result<std::vector<Lease>> none = store_->lease_batch("me", 60000, "mixed", {"roofline"}, 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // Results as complete() writes them.
  Result<std::vector<ResultRow>> results = store_->grid_results("mixed");
  ASSERT_TRUE(results.ok()) << results.message();
  EXPECT_EQ(results->size(), 5u);
}

// With a cursor, batches walk the grid once: each starts where the last ended; a
// job that went back to pending behind the cursor is found by one more walk from
// the top once nothing is left past it; then the result is empty.
TEST_F(JobStoreBatchesTest, CursorWalksTheGridOnceAndComesBackForJobsLeftBehind) {
  ASSERT_TRUE(store_->submit_grid(mixed_grid(), false).ok());
  JobStore::BatchCursor cursor;
  auto batch = [&](int limit) {
    Result<std::vector<Lease>> l = store_->lease_batch("me", 60000, "mixed", {"roofline"}, limit, &cursor);
    EXPECT_TRUE(l.ok()) << l.message();
    std::vector<Lease> out = l.ok() ? *l : std::vector<Lease>{};
    std::vector<std::pair<int64_t, RunRecord>> done;
    for (const Lease& x : out)
      if (x.hash != "r1") done.emplace_back(x.run_id, record(1));
    EXPECT_TRUE(store_->complete_batch("me", done).ok());
    std::string hashes;
    for (const Lease& x : out) hashes += x.hash + " ";
    return std::pair{hashes, out};
  };
  auto [first, first_leases] = batch(2);
  EXPECT_EQ(first, "r0 r1 ");
  EXPECT_EQ(cursor.after_position, 2);  // r1's position (a sleep job sits between)
  // r1 fails and goes back to pending, behind the cursor.
  for (const Lease& l : first_leases) {
    if (l.hash == "r1") {
      ASSERT_TRUE(store_->fail(l.run_id, "me", JobState::kFailed, "flaky").ok());
    }
  }
  EXPECT_EQ(batch(2).first, "r2 r3 ");
  EXPECT_EQ(batch(2).first, "r4 ");
  auto [again, again_leases] = batch(2);  // nothing past the cursor: from the top
  EXPECT_EQ(again, "r1 ");
  ASSERT_TRUE(store_->complete_batch("me", {{again_leases[0].run_id, record(2)}}).ok());
  EXPECT_EQ(batch(2).first, "");
  EXPECT_EQ(states()["succeeded"], 5);
}

// In one transaction: each picked job computed by the callback (with its params
// parsed); a success is succeeded with one run (attempt 1, its device and engine,
// its metrics) and nothing of a lease left; a failure ends its run as fail() does:
// back to pending while attempts remain, invalid at once; the cursor walks on.
TEST_F(JobStoreBatchesTest, InProcessBatchComputesAndRecordsInOneGo) {
  ASSERT_TRUE(store_->submit_grid(mixed_grid(), false).ok());
  JobStore::BatchCursor cursor;
  std::vector<std::string> seen;
  auto compute = [&](const Lease& l) {
    seen.push_back(l.hash + ":" + l.params.dump());
    JobStore::InProcessOutcome out;
    if (l.hash == "r1") {
      out.outcome = JobState::kFailed;
      out.error = "flaky";
    } else if (l.hash == "r2") {
      out.outcome = JobState::kInvalid;
      out.error = "no such preset";
    } else {
      out.ok = true;
      out.record = record(10.0 + l.params["context"].get<int>());
    }
    return out;
  };
  Result<std::vector<JobStore::InProcessJob>> first =
      store_->run_batch_in_process("me", "mixed", {"roofline"}, 3, &cursor, compute);
  ASSERT_TRUE(first.ok()) << first.message();
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ(seen, (std::vector<std::string>{"r0:{\"context\":1}", "r1:{\"context\":2}", "r2:{\"context\":3}"}));
  EXPECT_TRUE((*first)[0].ok);
  EXPECT_EQ((*first)[0].job_state, JobState::kSucceeded);
  EXPECT_FALSE((*first)[1].ok);
  EXPECT_EQ((*first)[1].job_state, JobState::kPending);  // attempts left: back for another
  EXPECT_EQ((*first)[1].error, "flaky");
  EXPECT_EQ((*first)[2].job_state, JobState::kInvalid);
  EXPECT_EQ(states()["succeeded"], 1);
  EXPECT_EQ(states()["invalid"], 1);
  EXPECT_EQ(states()["running"], 0);

  Result<std::vector<StoredJob>> jobs = store_->grid_jobs("mixed");
  ASSERT_TRUE(jobs.ok());
  std::map<std::string, StoredJob> by_hash;
  for (const StoredJob& j : *jobs) by_hash[j.hash] = j;
  EXPECT_EQ(by_hash["r0"].attempts, 1);
  EXPECT_EQ(by_hash["r0"].lease_owner, "");
  EXPECT_EQ(by_hash["r0"].result_run_id, (*first)[0].lease.run_id);
  EXPECT_EQ(by_hash["r1"].attempts, 1);
  EXPECT_EQ(by_hash["r2"].error, "no such preset");
  Result<std::optional<RunInfo>> run = store_->run_info((*first)[0].lease.run_id);
  ASSERT_TRUE(run.ok() && run->has_value());
  EXPECT_EQ((*run)->state, "succeeded");
  EXPECT_EQ((*run)->attempt, 1);
  EXPECT_EQ((*run)->owner, "me");
  Result<std::optional<RunInfo>> failed = store_->run_info((*first)[1].lease.run_id);
  ASSERT_TRUE(failed.ok() && failed->has_value());
  EXPECT_EQ((*failed)->state, "failed");

  // The rest past the cursor, then r1 again from the top (its second attempt).
  Result<std::vector<JobStore::InProcessJob>> rest =
      store_->run_batch_in_process("me", "mixed", {"roofline"}, 10, &cursor, compute);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[0].lease.hash, "r3");
  Result<std::vector<JobStore::InProcessJob>> again =
      store_->run_batch_in_process("me", "mixed", {"roofline"}, 10, &cursor, compute);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].lease.hash, "r1");
  EXPECT_EQ((*again)[0].lease.attempt, 2);
  EXPECT_EQ(states()["succeeded"], 3);
  EXPECT_EQ(states()["pending"], 6);  // r1 (one attempt left) and the sleep jobs

  // Results as complete() writes them: one row per metric of each success.
  Result<std::vector<ResultRow>> results = store_->grid_results("mixed");
  ASSERT_TRUE(results.ok()) << results.message();
  ASSERT_EQ(results->size(), 3u);
  EXPECT_EQ((*results)[0].hash, "r0");
  EXPECT_EQ((*results)[0].value, 11.0);
  EXPECT_EQ((*results)[0].device->at("name"), "rtx4090");
  EXPECT_EQ((*results)[0].engine_version, "test");
}

}  // namespace
}  // namespace gb::coord

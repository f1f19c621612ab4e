// JobStore: the schema of a fresh file, grid submission, the lease state machine,
// exactly-once results, the views, and two handles leasing concurrently.
#include "coordinator/store/job_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <latch>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/coordinator/store/job_store_fixture.h"
#include "coordinator/store/sqlite_util.h"

namespace gb::coord {
namespace {

using namespace testing;

// ---------------------------------------------------------------------------------

TEST(JobStateTest, NamesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(JobState::kCancelled); ++i) {
    auto s = static_cast<JobState>(i);
    EXPECT_EQ(parse_state(state_name(s)), s);
  }
  EXPECT_EQ(parse_state("invalid"), JobState::kInvalid);
  EXPECT_TRUE(is_terminal(JobState::kInvalid));
  EXPECT_FALSE(parse_state("done").has_value());
  EXPECT_TRUE(is_terminal(JobState::kOom));
  EXPECT_TRUE(is_terminal(JobState::kCancelled));
  EXPECT_FALSE(is_terminal(JobState::kRunning));
  EXPECT_FALSE(is_terminal(JobState::kPending));
  int64_t t = now_ms();
  EXPECT_GT(t, int64_t{1600000000000});  // after 2020, in milliseconds
}

TEST_F(JobStoreTest, MigratesFreshFileAndReopensIdempotently) {
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    EXPECT_EQ(store->schema_version(), job_store_schema_version());
    EXPECT_GE(store->schema_version(), 1);
    EXPECT_EQ(store->path(), path_);
    ASSERT_TRUE(store->submit_grid(make_grid("g", 3), false).ok());
  }
  {
    Raw raw(path_);
    EXPECT_EQ(raw.num("PRAGMA user_version"), job_store_schema_version());
    EXPECT_EQ(raw.num("SELECT COUNT(*) FROM schema_migrations"), job_store_schema_version());
    EXPECT_EQ(raw.str("PRAGMA journal_mode"), "wal");
    for (const char* t : {"grids", "jobs", "grid_jobs", "runs", "results", "series", "workers",
                          "schema_migrations", "v_results", "v_grid_status", "v_jobs"}) {
      EXPECT_EQ(raw.num(std::string("SELECT COUNT(*) FROM sqlite_master WHERE name = '") + t + "'"), 1) << t;
    }
    // Migration 5: the queue and lease-expiry indexes hold only the jobs their
    // queries read; the indexes nothing read are gone.
    EXPECT_NE(raw.str("SELECT sql FROM sqlite_master WHERE name = 'jobs_queue'").find("WHERE state = 'pending'"),
              std::string::npos);
    EXPECT_NE(raw.str("SELECT sql FROM sqlite_master WHERE name = 'jobs_lease_expiry'")
                  .find("WHERE state IN ('leased', 'running')"),
              std::string::npos);
    EXPECT_EQ(raw.num("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('jobs_lease_owner', 'runs_state')"), 0);
  }
  {
    auto store = open_store();  // second open: nothing to migrate, data kept
    ASSERT_TRUE(store);
    EXPECT_EQ(store->schema_version(), job_store_schema_version());
    auto grids = store->list_grids();
    ASSERT_TRUE(grids.ok());
    ASSERT_EQ(grids->size(), 1u);
    EXPECT_EQ((*grids)[0].name, "g");
    EXPECT_EQ((*grids)[0].total, 3);
  }
  Raw raw(path_);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM schema_migrations"), job_store_schema_version());
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM jobs"), 3);
}

TEST_F(JobStoreTest, OpenErrorNamesTheFile) {
  std::string bad = path_ + ".dir/sub/x.db";  // parent does not exist
  auto store = JobStore::open(bad);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.message().find(bad), std::string::npos) << store.message();
}

TEST_F(JobStoreTest, SqliteErrorsCarryTheSqlAndErrmsg) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  auto st = sqlite::Stmt::prepare(db, "SELEC 1 FROM nowhere");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("SELEC 1 FROM nowhere"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("syntax error"), std::string::npos) << st.message();
  ASSERT_TRUE(sqlite::exec(db, "CREATE TABLE t (a INTEGER PRIMARY KEY)").ok());
  ASSERT_TRUE(sqlite::exec(db, "INSERT INTO t VALUES (1)").ok());
  Status dup = sqlite::exec(db, "INSERT INTO t VALUES (1)");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.message().find("INSERT INTO t VALUES (1)"), std::string::npos) << dup.message();
  EXPECT_NE(dup.message().find("UNIQUE constraint failed"), std::string::npos) << dup.message();
  {
    // A transaction that is not committed is rolled back.
    auto txn = sqlite::Transaction::begin(db, sqlite::Transaction::Mode::kWrite);
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(sqlite::exec(db, "INSERT INTO t VALUES (2)").ok());
  }
  auto n = sqlite::query_int(db, "SELECT COUNT(*) FROM t");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  sqlite3_close(db);
}

TEST_F(JobStoreTest, SubmitReusesSucceededAndRerunRequeues) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto s1 = store->submit_grid(make_grid("g", 5), false);
  ASSERT_TRUE(s1.ok()) << s1.message();
  EXPECT_EQ(s1->jobs, 5);
  EXPECT_EQ(s1->queued, 5);
  EXPECT_EQ(s1->reused, 0);
  EXPECT_GT(s1->grid_id, 0);

  // Two jobs succeed.
  std::vector<int64_t> done_runs;
  for (int i = 0; i < 2; ++i) {
    Lease l = must_lease(*store, "w1");
    ASSERT_TRUE(store->complete(l.run_id, "w1", record(100 + i)).ok());
    done_runs.push_back(l.run_id);
  }
  auto s2 = store->submit_grid(make_grid("g", 5), false);
  ASSERT_TRUE(s2.ok()) << s2.message();
  EXPECT_EQ(s2->grid_id, s1->grid_id);
  EXPECT_EQ(s2->jobs, 5);
  EXPECT_EQ(s2->reused, 2);
  EXPECT_EQ(s2->queued, 3);

  auto s3 = store->submit_grid(make_grid("g", 5), /*rerun=*/true);
  ASSERT_TRUE(s3.ok()) << s3.message();
  EXPECT_EQ(s3->reused, 0);
  EXPECT_EQ(s3->queued, 5);
  auto jobs = store->grid_jobs("g");
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 5u);
  for (const auto& j : *jobs) {
    EXPECT_EQ(j.state, JobState::kPending) << j.hash;
    EXPECT_EQ(j.attempts, 0);
  }
  // Rerun keeps the old results until a new success replaces them.
  EXPECT_EQ((*jobs)[0].result_run_id, done_runs[0]);
  EXPECT_EQ((*jobs)[1].result_run_id, done_runs[1]);
  auto results = store->grid_results("g");
  ASSERT_TRUE(results.ok());
  EXPECT_EQ(results->size(), 6u);  // 3 metrics x 2 jobs
  Lease again = must_lease(*store, "w1");
  EXPECT_EQ(again.hash, "job0");
  ASSERT_TRUE(store->complete(again.run_id, "w1", record(500)).ok());
  jobs = store->grid_jobs("g");
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ((*jobs)[0].result_run_id, again.run_id);
  Raw raw(path_);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM results"), 9);  // old results still stored

  // A grid that drops job4 and gains job5: job4 is unlinked, not deleted.
  Grid changed = make_grid("g", 4);
  changed.jobs.push_back(make_job("job5", 5));
  changed.jobs.push_back(make_job("job0", 0));  // a duplicate: its first position counts
  changed.source = "elsewhere.json";
  auto s4 = store->submit_grid(changed, false);
  ASSERT_TRUE(s4.ok()) << s4.message();
  EXPECT_EQ(s4->jobs, 5);
  EXPECT_EQ(s4->reused, 1);
  EXPECT_EQ(s4->queued, 4);
  jobs = store->grid_jobs("g");
  ASSERT_TRUE(jobs.ok());
  std::vector<std::string> hashes;
  for (const auto& j : *jobs) hashes.push_back(j.hash);
  EXPECT_EQ(hashes, (std::vector<std::string>{"job0", "job1", "job2", "job3", "job5"}));
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM jobs"), 6);
  auto spec = store->grid_spec("g");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->second, "elsewhere.json");
  EXPECT_EQ(nlohmann::ordered_json::parse(spec->first), changed.spec);
  // An unlinked job is not handed out.
  for (int i = 0; i < 4; ++i) {
    Lease l = must_lease(*store, "w1");
    EXPECT_NE(l.hash, "job4");
  }
  auto none = store->lease_next("w1", 1000);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  EXPECT_FALSE(store->grid_jobs("nope").ok());
  EXPECT_FALSE(store->grid_spec("nope").ok());
  auto missing = store->grid_summary("nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_F(JobStoreTest, SubmitResetsFinishedFailuresButNotLeases) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit_grid(make_grid("g", 3), false, /*max_attempts=*/1).ok());
  Lease a = must_lease(*store, "w1");
  ASSERT_TRUE(store->fail(a.run_id, "w1", JobState::kFailed, "boom").ok());
  Lease b = must_lease(*store, "w1");
  ASSERT_TRUE(store->fail(b.run_id, "w1", JobState::kOom, "out of memory").ok());
  Lease c = must_lease(*store, "w1");
  ASSERT_TRUE(store->mark_running(c.run_id, "w1", 60000).ok());
  auto jobs = store->grid_jobs("g");
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ((*jobs)[0].state, JobState::kFailed);
  EXPECT_EQ((*jobs)[0].error, "boom");
  EXPECT_EQ((*jobs)[1].state, JobState::kOom);
  EXPECT_EQ((*jobs)[2].state, JobState::kRunning);

  auto s = store->submit_grid(make_grid("g", 3), false, 3);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->queued, 3);
  jobs = store->grid_jobs("g");
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ((*jobs)[0].state, JobState::kPending);
  EXPECT_EQ((*jobs)[0].attempts, 0);
  EXPECT_EQ((*jobs)[0].max_attempts, 3);
  EXPECT_EQ((*jobs)[1].state, JobState::kPending);
  EXPECT_EQ((*jobs)[2].state, JobState::kRunning);  // left to its holder
  EXPECT_EQ((*jobs)[2].lease_owner, "w1");
  EXPECT_TRUE(store->complete(c.run_id, "w1", record(1)).ok());

  EXPECT_FALSE(store->submit_grid(make_grid("g", 3), false, 0).ok());
  Grid unnamed = make_grid("", 1);
  EXPECT_FALSE(store->submit_grid(unnamed, false).ok());
}

// A job that leaves a grid on resubmission (a smaller grid) is cancelled when it is
// unfinished and no other grid wants it, a running one's run included, and its
// queue_key is NULL once no grid links it (issue 15: it kept running to success
// and kept its key, against docs/RESULTS_SCHEMA.md).
TEST_F(JobStoreTest, JobsThatLeaveAGridAreCancelledAndUnkeyed) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit_grid(make_grid("big", 4, "j"), false).ok());
  Grid other = make_grid("other", 0);
  other.jobs.push_back(make_job("j3", 3));  // j3 is wanted by another grid too
  ASSERT_TRUE(store->submit_grid(other, false).ok());
  Lease j0 = must_lease(*store, "w1", 60000, "big");  // j0 running, j1 finished, j2 pending
  ASSERT_EQ(j0.hash, "j0");
  ASSERT_TRUE(store->mark_running(j0.run_id, "w1", 60000).ok());
  Lease j1 = must_lease(*store, "w1", 60000, "big");
  ASSERT_TRUE(store->complete(j1.run_id, "w1", record(1)).ok());

  Grid smaller = make_grid("big", 0);
  smaller.jobs.push_back(make_job("j9", 9));
  auto stats = store->submit_grid(smaller, false);
  ASSERT_TRUE(stats.ok()) << stats.message();
  EXPECT_EQ(stats->jobs, 1);
  EXPECT_EQ(stats->left_cancelled, 2);  // j0 (running) and j2 (pending)

  Raw raw(path_);
  auto state = [&](const std::string& h) { return raw.str("SELECT state FROM jobs WHERE hash = '" + h + "'"); };
  auto key = [&](const std::string& h) { return raw.str("SELECT queue_key FROM jobs WHERE hash = '" + h + "'"); };
  EXPECT_EQ(state("j0"), "cancelled");
  EXPECT_EQ(raw.str("SELECT state FROM runs WHERE id = " + std::to_string(j0.run_id)), "cancelled");
  EXPECT_EQ(raw.str("SELECT error FROM jobs WHERE hash = 'j0'"), "left grid big on resubmission");
  EXPECT_EQ(state("j1"), "succeeded");  // finished: kept as it is
  EXPECT_EQ(state("j2"), "cancelled");
  EXPECT_EQ(state("j3"), "pending");  // the other grid still wants it
  for (const char* h : {"j0", "j1", "j2"}) EXPECT_EQ(key(h), "NULL") << h;
  const int64_t other_id = raw.num("SELECT id FROM grids WHERE name = 'other'");
  EXPECT_EQ(raw.num("SELECT queue_key FROM jobs WHERE hash = 'j3'"), other_id << 32);
  // The worker of j0 learns at its next renewal that its run is no more.
  EXPECT_FALSE(store->renew_lease(j0.run_id, "w1", 60000).ok());
  auto info = store->run_info(j0.run_id);
  ASSERT_TRUE(info.ok() && info->has_value());
  EXPECT_EQ((*info)->state, "cancelled");
  // Nothing of big but j9 is leased now.
  Lease next = must_lease(*store, "w2", 60000, "big");
  EXPECT_EQ(next.hash, "j9");
}

TEST_F(JobStoreTest, LeasesInGridOrder) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit_grid(make_grid("first", 3, "a"), false).ok());
  ASSERT_TRUE(store->submit_grid(make_grid("second", 2, "b"), false).ok());

  // A named grid: only its jobs, in position order.
  Lease b0 = must_lease(*store, "w1", 60000, "second");
  EXPECT_EQ(b0.hash, "b0");
  EXPECT_EQ(b0.kind, "roofline");
  EXPECT_EQ(b0.params["batch_size"], 1);
  EXPECT_EQ(b0.attempt, 1);
  EXPECT_GT(b0.run_id, 0);
  EXPECT_GE(b0.expires_ms, now_ms() + 50000);

  // Any grid: the oldest grid first, in position order.
  std::vector<std::string> order;
  while (true) {
    auto l = store->lease_next("w2", 60000);
    ASSERT_TRUE(l.ok()) << l.message();
    if (!l->has_value()) break;
    order.push_back((*l)->hash);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"a0", "a1", "a2", "b1"}));

  auto unknown = store->lease_next("w1", 60000, "third");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("third"), std::string::npos);
  EXPECT_FALSE(store->lease_next("", 60000).ok());
  EXPECT_FALSE(store->lease_next("w1", 0).ok());

  auto owners = store->lease_owners();
  ASSERT_TRUE(owners.ok());
  EXPECT_EQ(*owners, (std::vector<std::string>{"w1", "w2"}));

  Raw raw(path_);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM runs WHERE state = 'leased'"), 5);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM jobs WHERE state = 'leased' AND lease_run_id IS NOT NULL"), 5);
  EXPECT_EQ(raw.str("SELECT owner FROM runs WHERE id = " + std::to_string(b0.run_id)), "w1");
}

TEST_F(JobStoreTest, StaleOrForeignCompletionIsRefusedAndWritesNothing) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit_grid(make_grid("g", 1), false).ok());
  Lease l = must_lease(*store, "worker-a", 1000);
  Raw raw(path_);

  Status foreign = store->complete(l.run_id, "worker-x", record(1));
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.message().find("run " + std::to_string(l.run_id) + " of job job0 is not leased by worker-x"),
            std::string::npos)
      << foreign.message();
  EXPECT_NE(foreign.message().find("owner worker-a"), std::string::npos) << foreign.message();
  EXPECT_FALSE(store->mark_running(l.run_id, "worker-x", 1000).ok());
  EXPECT_FALSE(store->renew_lease(l.run_id, "worker-x", 1000).ok());
  EXPECT_FALSE(store->fail(l.run_id, "worker-x", JobState::kFailed, "x").ok());
  EXPECT_FALSE(store->release(l.run_id, "worker-x").ok());
  EXPECT_FALSE(store->complete(l.run_id + 1000, "worker-a", record(1)).ok());  // no such run
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM results"), 0);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM series"), 0);
  EXPECT_EQ(raw.str("SELECT state FROM jobs"), "leased");
  EXPECT_EQ(raw.str("SELECT state FROM runs"), "leased");

  // The lease expires and the job goes to someone else: the old run is stale.
  ASSERT_EQ(*store->expire_leases(now_ms() + 3600000), 1);
  Lease l2 = must_lease(*store, "worker-b");
  EXPECT_EQ(l2.job_id, l.job_id);
  EXPECT_EQ(l2.attempt, 2);
  Status stale = store->complete(l.run_id, "worker-a", record(1));
  ASSERT_FALSE(stale.ok());
  EXPECT_NE(stale.message().find("current run " + std::to_string(l2.run_id)), std::string::npos)
      << stale.message();
  EXPECT_FALSE(store->renew_lease(l.run_id, "worker-a", 1000).ok());
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM results"), 0);
  EXPECT_EQ(raw.str("SELECT state FROM runs WHERE id = " + std::to_string(l.run_id)), "expired");

  // Duplicate metric names are refused before anything is written.
  RunRecord dup = record(1);
  dup.metrics.push_back(dup.metrics[0]);
  EXPECT_FALSE(store->complete(l2.run_id, "worker-b", dup).ok());
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM results"), 0);
  EXPECT_EQ(raw.str("SELECT state FROM jobs"), "leased");
  EXPECT_TRUE(store->complete(l2.run_id, "worker-b", record(1)).ok());
}

TEST_F(JobStoreTest, ResultsAreStoredExactlyOnce) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit_grid(make_grid("g", 1), false).ok());
  Lease l = must_lease(*store, "w");
  ASSERT_TRUE(store->mark_running(l.run_id, "w", 60000).ok());
  ASSERT_TRUE(store->renew_lease(l.run_id, "w", 60000).ok());
  ASSERT_TRUE(store->complete(l.run_id, "w", record(42)).ok());
  Status again = store->complete(l.run_id, "w", record(43));
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.message().find("state succeeded"), std::string::npos) << again.message();
  EXPECT_FALSE(store->fail(l.run_id, "w", JobState::kFailed, "late").ok());
  EXPECT_FALSE(store->renew_lease(l.run_id, "w", 60000).ok());

  Raw raw(path_);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM results"), 3);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM series"), 3);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM runs"), 1);
  EXPECT_EQ(raw.str("SELECT value FROM results WHERE metric = 'tok_per_s'"), "42.0");
  EXPECT_EQ(raw.str("SELECT state || ',' || IFNULL(lease_owner, '-') || ',' || result_run_id FROM jobs"),
            "succeeded,-," + std::to_string(l.run_id));
  EXPECT_EQ(raw.str("SELECT state || ',' || engine_version || ',' || wall_ms FROM runs"), "succeeded,0.1.0,12.5");
  EXPECT_EQ(raw.str("SELECT json_extract(device_json, '$.name') FROM runs"), "cpu");

  auto series = store->job_series(l.job_id);
  ASSERT_TRUE(series.ok()) << series.message();
  ASSERT_EQ(series->size(), 1u);
  EXPECT_EQ((*series)[0].name, "decode_ms");
  EXPECT_EQ((*series)[0].x_unit, "step");
  EXPECT_EQ((*series)[0].y_unit, "ms");
  ASSERT_EQ((*series)[0].points.size(), 3u);
  EXPECT_DOUBLE_EQ((*series)[0].points[2].x, 3);
  EXPECT_DOUBLE_EQ((*series)[0].points[2].y, 11.5);
  EXPECT_FALSE(store->job_series(l.job_id + 100).ok());

  auto summary = store->grid_summary("g");
  ASSERT_TRUE(summary.ok());
  ASSERT_TRUE(summary->has_value());
  EXPECT_EQ((*summary)->total, 1);
  EXPECT_EQ((*summary)->by_state.at("succeeded"), 1);
  EXPECT_EQ((*summary)->by_state.at("pending"), 0);
}

TEST_F(JobStoreTest, ExpiredLeasesReturnJobsToPending) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit_grid(make_grid("g", 2), false).ok());
  Lease a = must_lease(*store, "w1", 1000);
  Lease b = must_lease(*store, "w2", 3600000);
  ASSERT_TRUE(store->mark_running(a.run_id, "w1", 1000).ok());
  const int64_t now = now_ms();
  EXPECT_EQ(*store->expire_leases(now - 10000), 0);  // nothing expired yet
  auto n = store->expire_leases(now + 60000);        // a's lease (1 s) is over, b's is not
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  auto jobs = store->grid_jobs("g");
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ((*jobs)[0].state, JobState::kPending);
  EXPECT_EQ((*jobs)[0].attempts, 1);
  EXPECT_TRUE((*jobs)[0].lease_owner.empty());
  EXPECT_NE((*jobs)[0].error.find("lease expired"), std::string::npos);
  EXPECT_EQ((*jobs)[1].state, JobState::kLeased);
  Raw raw(path_);
  EXPECT_EQ(raw.str("SELECT state FROM runs WHERE id = " + std::to_string(a.run_id)), "expired");
  EXPECT_NE(raw.str("SELECT finished_ms FROM runs WHERE id = " + std::to_string(a.run_id)), "NULL");

  // A renewed lease does not expire.
  ASSERT_TRUE(store->renew_lease(b.run_id, "w2", 3600000).ok());
  EXPECT_EQ(*store->expire_leases(now + 60000), 0);

  Lease again = must_lease(*store, "w3");
  EXPECT_EQ(again.hash, "job0");
  EXPECT_EQ(again.attempt, 2);

  // reclaim_owner: the holder is known dead.
  auto reclaimed = store->reclaim_owner("w2");
  ASSERT_TRUE(reclaimed.ok());
  EXPECT_EQ(*reclaimed, 1);
  EXPECT_EQ(raw.str("SELECT state FROM jobs WHERE hash = 'job1'"), "pending");
  EXPECT_EQ(raw.str("SELECT state FROM runs WHERE id = " + std::to_string(b.run_id)), "expired");
  auto owners = store->lease_owners();
  ASSERT_TRUE(owners.ok());
  EXPECT_EQ(*owners, std::vector<std::string>{"w3"});
}

TEST_F(JobStoreTest, AttemptsExhaustToFailed) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit_grid(make_grid("g", 3), false, /*max_attempts=*/2).ok());
  // job0: fails twice.
  Lease a1 = must_lease(*store, "w", 60000, "g");
  ASSERT_EQ(a1.hash, "job0");
  ASSERT_TRUE(store->fail(a1.run_id, "w", JobState::kFailed, "first error").ok());
  Raw raw(path_);
  EXPECT_EQ(raw.str("SELECT state || ':' || attempts || ':' || error FROM jobs WHERE hash = 'job0'"),
            "pending:1:first error");
  Lease a2 = must_lease(*store, "w");
  ASSERT_EQ(a2.hash, "job0");
  EXPECT_EQ(a2.attempt, 2);
  ASSERT_TRUE(store->fail(a2.run_id, "w", JobState::kFailed, "second error").ok());
  EXPECT_EQ(raw.str("SELECT state || ':' || attempts || ':' || error FROM jobs WHERE hash = 'job0'"),
            "failed:2:second error");
  EXPECT_EQ(raw.str("SELECT group_concat(state || '=' || error, ';') FROM runs WHERE job_id = " +
                    std::to_string(a1.job_id)),
            "failed=first error;failed=second error");

  // job1: its lease expires twice.
  Lease b1 = must_lease(*store, "w", 1);
  ASSERT_EQ(b1.hash, "job1");
  ASSERT_EQ(*store->expire_leases(now_ms() + 1000), 1);
  Lease b2 = must_lease(*store, "w", 1);
  ASSERT_EQ(b2.hash, "job1");
  ASSERT_EQ(*store->expire_leases(now_ms() + 1000), 1);
  EXPECT_EQ(raw.str("SELECT state FROM jobs WHERE hash = 'job1'"), "failed");
  EXPECT_NE(raw.str("SELECT error FROM jobs WHERE hash = 'job1'").find("lease expired after 2 attempts"),
            std::string::npos);

  // job2: timeouts end in timeout.
  Lease c1 = must_lease(*store, "w");
  ASSERT_EQ(c1.hash, "job2");
  ASSERT_TRUE(store->fail(c1.run_id, "w", JobState::kTimeout, "took too long").ok());
  EXPECT_EQ(raw.str("SELECT state FROM jobs WHERE hash = 'job2'"), "pending");
  Lease c2 = must_lease(*store, "w");
  ASSERT_TRUE(store->fail(c2.run_id, "w", JobState::kTimeout, "took too long").ok());
  EXPECT_EQ(raw.str("SELECT state FROM jobs WHERE hash = 'job2'"), "timeout");
  EXPECT_NE(raw.str("SELECT finished_ms FROM jobs WHERE hash = 'job2'"), "NULL");

  auto none = store->lease_next("w", 1000);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto summary = store->grid_summary("g");
  ASSERT_TRUE(summary.ok() && summary->has_value());
  EXPECT_EQ((*summary)->by_state.at("failed"), 2);
  EXPECT_EQ((*summary)->by_state.at("timeout"), 1);
}

TEST_F(JobStoreTest, OomIsTerminal) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit_grid(make_grid("g", 1), false, 5).ok());
  Lease l = must_lease(*store, "w");
  ASSERT_TRUE(store->mark_running(l.run_id, "w", 60000).ok());
  ASSERT_TRUE(store->fail(l.run_id, "w", JobState::kOom, "CUDA out of memory").ok());
  Raw raw(path_);
  EXPECT_EQ(raw.str("SELECT state || ':' || error FROM jobs"), "oom:CUDA out of memory");
  EXPECT_EQ(raw.str("SELECT state FROM runs"), "oom");
  auto none = store->lease_next("w", 1000);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // Only failed, oom and timeout are outcomes.
  ASSERT_TRUE(store->submit_grid(make_grid("g", 1), false).ok());
  Lease l2 = must_lease(*store, "w");
  EXPECT_FALSE(store->fail(l2.run_id, "w", JobState::kSucceeded, "?").ok());
  EXPECT_FALSE(store->fail(l2.run_id, "w", JobState::kCancelled, "?").ok());
  EXPECT_EQ(raw.str("SELECT state FROM jobs"), "leased");
}

TEST_F(JobStoreTest, ReleaseGivesTheAttemptBack) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit_grid(make_grid("g", 1), false, 1).ok());
  Lease l = must_lease(*store, "w");
  ASSERT_TRUE(store->mark_running(l.run_id, "w", 60000).ok());
  ASSERT_TRUE(store->release(l.run_id, "w").ok());
  Raw raw(path_);
  EXPECT_EQ(raw.str("SELECT state || ':' || attempts || ':' || IFNULL(lease_owner, '-') FROM jobs"), "pending:0:-");
  EXPECT_EQ(raw.str("SELECT state FROM runs"), "released");
  EXPECT_FALSE(store->release(l.run_id, "w").ok());
  EXPECT_FALSE(store->complete(l.run_id, "w", record(1)).ok());
  // With max_attempts 1 the job can still run once more.
  Lease again = must_lease(*store, "w");
  EXPECT_EQ(again.attempt, 1);
  EXPECT_NE(again.run_id, l.run_id);
  ASSERT_TRUE(store->complete(again.run_id, "w", record(1)).ok());
}

TEST_F(JobStoreTest, CancelGridStopsItsUnfinishedJobs) {
  auto store = open_store();
  ASSERT_TRUE(store);
  Grid a = make_grid("a", 4);
  Grid b = make_grid("b", 1, "shared");
  a.jobs.push_back(make_job("shared0", 0));  // also in grid b
  ASSERT_TRUE(store->submit_grid(a, false).ok());
  ASSERT_TRUE(store->submit_grid(b, false).ok());
  Lease done = must_lease(*store, "w", 60000, "a");     // job0
  ASSERT_TRUE(store->complete(done.run_id, "w", record(1)).ok());
  Lease leased = must_lease(*store, "w", 60000, "a");   // job1
  Lease running = must_lease(*store, "w", 60000, "a");  // job2
  ASSERT_TRUE(store->mark_running(running.run_id, "w", 60000).ok());

  auto n = store->cancel_grid("a");
  ASSERT_TRUE(n.ok()) << n.message();
  EXPECT_EQ(*n, 3);  // job1, job2, job3; not job0 (succeeded) nor shared0 (grid b wants it)
  Raw raw(path_);
  EXPECT_EQ(raw.str("SELECT group_concat(hash || '=' || state, ',') FROM (SELECT hash, state FROM jobs ORDER BY hash)"),
            "job0=succeeded,job1=cancelled,job2=cancelled,job3=cancelled,shared0=pending");
  EXPECT_EQ(raw.str("SELECT state FROM runs WHERE id = " + std::to_string(leased.run_id)), "cancelled");
  EXPECT_EQ(raw.str("SELECT state FROM runs WHERE id = " + std::to_string(running.run_id)), "cancelled");
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM jobs WHERE lease_owner IS NOT NULL"), 0);
  // The holder learns it at its next heartbeat.
  Status renew = store->renew_lease(running.run_id, "w", 60000);
  ASSERT_FALSE(renew.ok());
  EXPECT_NE(renew.message().find("state cancelled"), std::string::npos) << renew.message();
  EXPECT_FALSE(store->complete(leased.run_id, "w", record(1)).ok());
  auto next = store->lease_next("w", 60000, "a");
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->hash, "shared0");
  // Cancelling b as well: nothing wants the shared job any more.
  ASSERT_EQ(*store->cancel_grid("b"), 1);
  EXPECT_EQ(raw.str("SELECT state FROM jobs WHERE hash = 'shared0'"), "cancelled");
  EXPECT_FALSE(store->cancel_grid("nope").ok());

  // Resubmitting brings cancelled jobs back.
  auto s = store->submit_grid(a, false);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->reused, 1);
  EXPECT_EQ(s->queued, 4);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM jobs WHERE state = 'pending'"), 4);
}

// grid_series: every job's current series in one query, as job_series reads them
// one job at a time; a job without a result (or without series) is absent.
TEST_F(JobStoreTest, GridSeriesIsJobSeriesOfEveryJob) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit_grid(make_grid("g", 3), false).ok());
  std::vector<int64_t> job_ids;
  for (int i = 0; i < 2; ++i) {
    Lease l = must_lease(*store, "w", 60000, "g");
    job_ids.push_back(l.job_id);
    RunRecord r = record(i);
    if (i == 1) r.series.push_back({"curve", "tokens", "ms", {{1, 0.5}, {2, 1.0 / 3}}});
    ASSERT_TRUE(store->complete(l.run_id, "w", r).ok());
  }
  auto all = store->grid_series("g");
  ASSERT_TRUE(all.ok()) << all.message();
  ASSERT_EQ(all->size(), 2u);  // the third job has no result yet
  for (int64_t id : job_ids) {
    auto one = store->job_series(id);
    ASSERT_TRUE(one.ok()) << one.message();
    const std::string hash = "job" + std::to_string(id - job_ids[0]);
    ASSERT_TRUE(all->count(hash)) << hash;
    const auto& got = all->at(hash);
    ASSERT_EQ(got.size(), one->size());
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_EQ(got[k].name, (*one)[k].name);
      ASSERT_EQ(got[k].points.size(), (*one)[k].points.size());
      for (size_t p = 0; p < got[k].points.size(); ++p) EXPECT_EQ(got[k].points[p].y, (*one)[k].points[p].y);
    }
  }
  EXPECT_EQ(all->at("job1").back().name, "curve");
  EXPECT_FALSE(store->grid_series("nope").ok());
}

TEST_F(JobStoreTest, ResultsViewMatchesGridResults) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit_grid(make_grid("g", 3), false).ok());
  ASSERT_TRUE(store->submit_grid(make_grid("other", 1, "x"), false).ok());
  for (int i = 0; i < 3; ++i) {
    Lease l = must_lease(*store, "w", 60000, "g");
    if (i == 1) {
      ASSERT_TRUE(store->fail(l.run_id, "w", JobState::kOom, "oom").ok());
      continue;
    }
    ASSERT_TRUE(store->complete(l.run_id, "w", record(10 * (i + 1))).ok());
  }
  auto results = store->grid_results("g");
  ASSERT_TRUE(results.ok()) << results.message();
  ASSERT_EQ(results->size(), 6u);
  EXPECT_EQ((*results)[0].hash, "job0");
  EXPECT_EQ((*results)[0].metric, "tok_per_s");
  EXPECT_EQ((*results)[0].value, 10.0);
  EXPECT_EQ((*results)[0].unit, "tok/s");
  EXPECT_EQ((*results)[0].params->at("batch_size"), 1);
  EXPECT_EQ((*results)[0].device->at("name"), "cpu");
  EXPECT_EQ((*results)[0].engine_version, "0.1.0");
  EXPECT_EQ((*results)[2].metric, "max_context");
  EXPECT_FALSE((*results)[2].value.has_value());
  EXPECT_EQ((*results)[2].text, "oom");
  EXPECT_EQ((*results)[3].hash, "job2");

  Raw raw(path_);
  auto rows = raw.rows(
      "SELECT job_hash, kind, params_json, metric, IFNULL(value, 'NULL'), unit, text, engine_version, device_json "
      "FROM v_results WHERE grid = 'g' ORDER BY position, metric");
  ASSERT_EQ(rows.size(), results->size());
  // grid_results is in position order, metrics in reported order: sort the metrics
  // of each job by name, as the query does.
  std::map<int64_t, size_t> job_order;
  for (const auto& r : *results) job_order.emplace(r.job_id, job_order.size());
  std::vector<ResultRow> sorted = *results;
  std::stable_sort(sorted.begin(), sorted.end(), [&](const ResultRow& x, const ResultRow& y) {
    return std::make_pair(job_order[x.job_id], x.metric) < std::make_pair(job_order[y.job_id], y.metric);
  });
  for (size_t i = 0; i < rows.size(); ++i) {
    const ResultRow& r = sorted[i];
    EXPECT_EQ(rows[i][0], r.hash);
    EXPECT_EQ(rows[i][1], r.kind);
    EXPECT_EQ(Json::parse(rows[i][2]), r.params);
    EXPECT_EQ(rows[i][3], r.metric);
    if (r.value.has_value()) {
      EXPECT_DOUBLE_EQ(std::stod(rows[i][4]), *r.value);
    } else {
      EXPECT_EQ(rows[i][4], "NULL");
    }
    EXPECT_EQ(rows[i][5], r.unit);
    EXPECT_EQ(rows[i][6], r.text);
    EXPECT_EQ(rows[i][7], r.engine_version);
    EXPECT_EQ(Json::parse(rows[i][8]), r.device);
  }
  auto status = raw.rows("SELECT state, count FROM v_grid_status WHERE grid = 'g' ORDER BY state");
  EXPECT_EQ(status, (std::vector<std::vector<std::string>>{{"oom", "1"}, {"succeeded", "2"}}));
  auto summary = store->grid_summary("g");
  ASSERT_TRUE(summary.ok() && summary->has_value());
  EXPECT_EQ((*summary)->by_state.at("oom"), 1);
  EXPECT_EQ((*summary)->by_state.at("succeeded"), 2);
  EXPECT_EQ((*summary)->total, 3);
  EXPECT_EQ((*summary)->source, "experiments/g.json");
  auto empty = store->grid_results("other");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(store->grid_results("nope").ok());
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM v_jobs WHERE grid = 'g' AND state = 'oom' AND error = 'oom'"), 1);
}

TEST_F(JobStoreTest, TwoHandlesNeverLeaseTheSameJobTwice) {
  constexpr int kJobs = 200;
  auto a = open_store();
  auto b = open_store();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->submit_grid(make_grid("big", kJobs), false).ok());

  std::vector<int64_t> got[2];
  std::atomic<int> errors{0};
  std::latch start(2);  // both threads begin leasing together
  auto worker = [&](JobStore* store, int w) {
    const std::string owner = "worker-" + std::to_string(w);
    start.arrive_and_wait();
    while (true) {
      auto l = store->lease_next(owner, 60000);
      if (!l.ok()) {
        ADD_FAILURE() << l.message();
        ++errors;
        return;
      }
      if (!l->has_value()) return;
      got[w].push_back((*l)->job_id);
      Status st = store->complete((*l)->run_id, owner, record(w));
      if (!st.ok()) {
        ADD_FAILURE() << st.message();
        ++errors;
      }
    }
  };
  std::thread t0(worker, a.get(), 0);
  std::thread t1(worker, b.get(), 1);
  t0.join();
  t1.join();
  EXPECT_EQ(errors.load(), 0);

  std::set<int64_t> all;
  for (const auto& v : got) {
    for (int64_t id : v) EXPECT_TRUE(all.insert(id).second) << "job " << id << " leased twice";
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(got[0].size() + got[1].size(), static_cast<size_t>(kJobs));
  Raw raw(path_);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM runs"), kJobs);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM jobs WHERE state = 'succeeded' AND attempts = 1"), kJobs);
  EXPECT_EQ(raw.num("SELECT COUNT(DISTINCT run_id) FROM results"), kJobs);
}

// One JobStore shared by several threads (as in a daemon) is serialized internally.
TEST_F(JobStoreTest, OneHandleSharedByThreads) {
  constexpr int kJobs = 100;
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->submit_grid(make_grid("g", kJobs), false).ok());
  std::atomic<int> leased{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([&, w] {
      const std::string owner = "t" + std::to_string(w);
      while (true) {
        auto l = store->lease_next(owner, 60000);
        if (!l.ok() || !l->has_value()) return;
        ++leased;
        EXPECT_TRUE(store->complete((*l)->run_id, owner, record(1)).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(leased.load(), kJobs);
  Raw raw(path_);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'"), kJobs);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM runs"), kJobs);
}

}  // namespace
}  // namespace gb::coord

namespace gb::coord {
namespace {

using namespace testing;

// Concurrent completions are group-committed: refused ones (a foreign owner, a
// second completion of the same run) share batches with accepted ones, and
// neither leaves a trace of the other. Every accepted result is stored once.
TEST_F(JobStoreTest, GroupCommitKeepsRefusedWritesOutOfTheirBatch) {
  auto store = open_store();
  ASSERT_TRUE(store);
  constexpr int kJobs = 64;
  ASSERT_TRUE(store->submit_grid(make_grid("g", kJobs), false).ok());
  std::vector<Lease> leases;
  for (int i = 0; i < kJobs; ++i) leases.push_back(must_lease(*store, "w" + std::to_string(i % 4)));
  std::atomic<int> accepted{0}, refused{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = t; i < kJobs; i += 8) {
        const Lease& l = leases[static_cast<size_t>(i)];
        const std::string owner = "w" + std::to_string(i % 4);
        // A foreign completion first, then the real one, then a duplicate.
        if (store->complete(l.run_id, "intruder", record(-1)).ok()) ++wrong;
        else ++refused;
        if (store->complete(l.run_id, owner, record(i)).ok()) ++accepted;
        else ++wrong;
        if (store->complete(l.run_id, owner, record(-2)).ok()) ++wrong;
        else ++refused;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(accepted, kJobs);
  EXPECT_EQ(refused, 2 * kJobs);
  EXPECT_EQ(wrong, 0);

  Raw raw(path_);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'"), kJobs);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM results WHERE metric = 'tok_per_s'"), kJobs);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM results WHERE value < 0"), 0);  // nothing of the refused writes
  EXPECT_EQ(raw.num("SELECT COUNT(DISTINCT job_id) FROM runs WHERE state = 'succeeded'"), kJobs);
  // Each job's stored value is its own.
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM results r JOIN runs u ON r.run_id = u.id JOIN jobs j ON u.job_id = j.id "
                    "WHERE r.metric = 'tok_per_s' AND r.value = CAST(substr(j.hash, 4) AS REAL)"),
            kJobs);
}

}  // namespace
}  // namespace gb::coord

namespace gb::coord {
namespace {

using namespace testing;

// Background checkpoints copy the WAL into the database file while writers go
// on; without them (the control) a burst smaller than SQLite's own checkpoint
// threshold (1000 WAL pages) stays in the WAL.
TEST_F(JobStoreTest, BackgroundCheckpointsCopyTheWalIntoTheDatabase) {
  auto burst = [](JobStore& s) {
    ASSERT_TRUE(s.submit_grid(make_grid("g", 20), false).ok());
    for (int i = 0; i < 20; ++i) {
      Lease l = must_lease(s, "w");
      ASSERT_TRUE(s.complete(l.run_id, "w", record(i)).ok());
    }
  };
  auto store = open_store();
  ASSERT_TRUE(store);
  const auto empty = fs::file_size(path_);
  ASSERT_TRUE(store->start_background_checkpoints(5).ok());
  EXPECT_FALSE(store->start_background_checkpoints(5).ok());  // once
  burst(*store);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto with = fs::file_size(path_);

  const std::string control_path = path_ + ".control";
  auto control = JobStore::open(control_path);
  ASSERT_TRUE(control.ok()) << control.message();
  EXPECT_FALSE((*control)->start_background_checkpoints(0).ok());
  burst(**control);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto without = fs::file_size(control_path);

  EXPECT_GT(with, empty + 16384) << "empty " << empty << ", after the burst " << with;
  EXPECT_LT(without, empty + 4096) << "empty " << empty << ", control after the burst " << without;
  store.reset();  // stops the checkpointer
  Raw raw(path_);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'"), 20);
}

}  // namespace
}  // namespace gb::coord

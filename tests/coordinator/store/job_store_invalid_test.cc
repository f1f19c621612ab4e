// The invalid job state: JobStore::fail with kInvalid ends the job at once whatever
// its attempts left, and schema migration 4 turns a version-3 database's jobs and
// runs stored `failed` with an "invalid: " error into `invalid` (rebuilding the
// tables, whose old CHECK refuses the state). Not here: the other states and
// migrations (job_store_migrations_test.cc), the daemons' path (tests/integration/).
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "coordinator/store/job_store.h"
#include "tests/coordinator/store/job_store_fixture.h"
#include "tests/coordinator/store/schema_downgrade.h"

namespace gb::coord {
namespace {

using namespace testing;

// The store tests' fixture: a database file of its own per test.
class InvalidStateTest : public JobStoreTest {};

Grid two_job_grid() {
  Grid g;
  g.name = "g";
  g.source = "g.json";
  g.spec = nlohmann::ordered_json{{"name", "g"}};
  for (int i = 0; i < 2; ++i) {
    GridJob j;
    j.hash = "job" + std::to_string(i);
    j.kind = "sleep";
    j.params = Json{{"seconds", i}};
    g.jobs.push_back(j);
  }
  return g;
}

TEST_F(InvalidStateTest, AnInvalidOutcomeEndsTheJobAtOnce) {
  auto store = JobStore::open(path_);
  ASSERT_TRUE(store.ok()) << store.message();
  ASSERT_TRUE((*store)->submit_grid(two_job_grid(), false, /*max_attempts=*/3).ok());
  auto lease = (*store)->lease_next("w", 60000);
  ASSERT_TRUE(lease.ok() && lease->has_value());
  ASSERT_TRUE((*store)->fail((*lease)->run_id, "w", JobState::kInvalid, "$.params.dataset: missing").ok());
  auto info = (*store)->run_info((*lease)->run_id);
  ASSERT_TRUE(info.ok() && info->has_value());
  EXPECT_EQ((*info)->job_state, JobState::kInvalid);  // two attempts left, not retried
  EXPECT_EQ((*info)->state, "invalid");
  auto next = (*store)->lease_next("w", 60000);
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_NE((*next)->hash, (*lease)->hash);  // the other job; the invalid one is not pending
  auto summary = (*store)->grid_summary("g");
  ASSERT_TRUE(summary.ok() && summary->has_value());
  EXPECT_EQ((*summary)->by_state.at("invalid"), 1);
  // Resubmitting puts it back to pending, as a failed job would be (its input may
  // have been fixed).
  ASSERT_TRUE((*store)->fail((*next)->run_id, "w", JobState::kInvalid, "again").ok());
  ASSERT_TRUE((*store)->submit_grid(two_job_grid(), false, 3).ok());
  summary = (*store)->grid_summary("g");
  ASSERT_TRUE(summary.ok() && summary->has_value());
  EXPECT_EQ((*summary)->by_state.at("pending"), 2);
}

// A version-3 file: made by opening a current one, storing the rows as version 3
// stored them, and putting the version-3 CHECKs (without 'invalid') and
// user_version back.
TEST_F(InvalidStateTest, Migration4TurnsFailedInvalidRowsIntoTheInvalidState) {
  { ASSERT_TRUE(JobStore::open(path_).ok()); }
  {
    Raw raw(path_);
    ASSERT_EQ(raw.error_of(kUndoMigration7), "");
    ASSERT_EQ(raw.error_of(kUndoMigration6), "");
    ASSERT_EQ(raw.error_of(R"sql(
      INSERT INTO grids(id, name, created_ms, updated_ms) VALUES (1, 'old', 0, 0);
      INSERT INTO jobs(id, hash, kind, params_json, state, attempts, error, created_ms, queue_key) VALUES
        (1, 'a', 'ppl', '{}', 'failed', 1, 'invalid: $.params.dataset: x.txt does not exist', 0, 1),
        (2, 'b', 'ppl', '{}', 'failed', 3, 'crash', 0, 2),
        (3, 'c', 'sleep', '{}', 'succeeded', 1, '', 0, 3),
        (4, 'd', 'sleep', '{}', 'pending', 0, '', 0, 4);
      INSERT INTO grid_jobs(grid_id, job_id, position) VALUES (1, 1, 0), (1, 2, 1), (1, 3, 2), (1, 4, 3);
      INSERT INTO runs(id, job_id, attempt, owner, state, started_ms, error) VALUES
        (1, 1, 1, 'w', 'failed', 0, 'invalid: $.params.dataset: x.txt does not exist'),
        (2, 2, 1, 'w', 'failed', 0, 'crash'),
        (3, 3, 1, 'w', 'succeeded', 0, ''),
        (4, 2, 2, 'w', 'failed', 0, 'crash');
      DELETE FROM runs WHERE id = 4;
      UPDATE jobs SET result_run_id = 3 WHERE id = 3;
      INSERT INTO results(run_id, metric, value) VALUES (3, 'wall_ms', 1.5);
      PRAGMA writable_schema = ON;
      UPDATE sqlite_master SET sql = replace(sql, '''invalid'',', '') WHERE name IN ('jobs', 'runs');
      PRAGMA writable_schema = OFF;
      DELETE FROM schema_migrations WHERE version >= 4;
      PRAGMA user_version = 3;)sql"),
              "");
  }
  {
    Raw raw(path_);  // the old CHECK is back: the state cannot be stored
    EXPECT_NE(raw.error_of("UPDATE jobs SET state = 'invalid' WHERE id = 2"), "");
    EXPECT_EQ(raw.num("SELECT seq FROM sqlite_sequence WHERE name = 'runs'"), 4);
  }
  auto store = JobStore::open(path_);
  ASSERT_TRUE(store.ok()) << store.message();
  EXPECT_EQ((*store)->schema_version(), job_store_schema_version());
  Raw raw(path_);
  EXPECT_EQ(raw.str("SELECT group_concat(state || ':' || error, ' | ') FROM (SELECT state, error FROM jobs ORDER BY id)"),
            "invalid:$.params.dataset: x.txt does not exist | failed:crash | succeeded: | pending:");
  EXPECT_EQ(raw.str("SELECT group_concat(state || ':' || error, ' | ') FROM (SELECT state, error FROM runs ORDER BY id)"),
            "invalid:$.params.dataset: x.txt does not exist | failed:crash | succeeded:");
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM v_results WHERE grid = 'old'"), 1);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM v_jobs WHERE grid = 'old' AND state = 'invalid'"), 1);
  EXPECT_EQ(raw.str("SELECT group_concat(state || '=' || count, ' ') FROM v_grid_status WHERE grid = 'old'"),
            "failed=1 invalid=1 pending=1 succeeded=1");
  // Migration 4 made the rebuilt tables' indexes again; migration 5 then dropped
  // jobs_lease_owner and runs_state.
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN ('jobs_lease_expiry', "
                    "'jobs_queue', 'runs_job')"),
            3);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_new'"), 0);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
  {
    auto lease = (*store)->lease_next("w", 60000);
    ASSERT_TRUE(lease.ok() && lease->has_value());
    EXPECT_EQ((*lease)->hash, "d");
    EXPECT_EQ((*lease)->run_id, 5);  // the AUTOINCREMENT counter was kept (run 4 was deleted)
    ASSERT_TRUE((*store)->fail((*lease)->run_id, "w", JobState::kInvalid, "unset ${X}").ok());
  }
  EXPECT_EQ(raw.str("SELECT state FROM jobs WHERE hash = 'd'"), "invalid");
  EXPECT_EQ(raw.str("SELECT state FROM runs WHERE id = 5"), "invalid");
  EXPECT_NE(raw.error_of("UPDATE jobs SET state = 'done' WHERE id = 4"), "");  // the CHECK is still there
}

}  // namespace
}  // namespace gb::coord

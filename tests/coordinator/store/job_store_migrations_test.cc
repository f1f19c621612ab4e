// JobStore migrations: each replayed on a database that today's schema wrote and
// that was taken back past it (schema_downgrade.h), and a newer file refused.
#include <string>

#include <gtest/gtest.h>

#include "coordinator/store/job_store.h"
#include "tests/coordinator/store/job_store_fixture.h"
#include "tests/coordinator/store/schema_downgrade.h"

namespace gb::coord {
namespace {

using namespace testing;

// Migration 6 turns the per-point series table into series_data (a row per series)
// and a `series` view with the old columns: a version-5 file's points read the same
// through the view and through job_series.
TEST_F(JobStoreTest, Migration6KeepsEveryPointOfEverySeries) {
  int64_t job_id = 0;
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->submit_grid(make_grid("g", 1), false).ok());
    Lease l = must_lease(*store, "w");
    job_id = l.job_id;
    RunRecord r = record(1);
    r.series.push_back({"curve", "tokens", "ms", {{1, 0.1}, {5001, 1.0 / 3}, {10000, 1e-300}}});
    ASSERT_TRUE(store->complete(l.run_id, "w", r).ok());
  }
  {
    Raw raw(path_);
    raw.exec(testing::kUndoMigration7);
    raw.exec(testing::kUndoMigration6);
    raw.exec("DELETE FROM schema_migrations WHERE version >= 6");
    raw.exec("PRAGMA user_version = 5");
    EXPECT_EQ(raw.str("SELECT type FROM sqlite_master WHERE name = 'series'"), "table");
    EXPECT_EQ(raw.num("SELECT COUNT(*) FROM series"), 6);
  }
  auto store = open_store();
  ASSERT_TRUE(store);
  Raw raw(path_);
  EXPECT_EQ(raw.str("SELECT type FROM sqlite_master WHERE name = 'series'"), "view");
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM series_data"), 2);
  EXPECT_EQ(raw.str("SELECT group_concat(idx || ':' || x || ':' || y || ':' || x_unit || ':' || y_unit, ' ') "
                    "FROM (SELECT * FROM series WHERE name = 'decode_ms' ORDER BY idx)"),
            "0:1.0:10.5:step:ms 1:2.0:11.0:step:ms 2:3.0:11.5:step:ms");
  auto series = store->job_series(job_id);
  ASSERT_TRUE(series.ok()) << series.message();
  ASSERT_EQ(series->size(), 2u);
  EXPECT_EQ((*series)[1].name, "curve");
  ASSERT_EQ((*series)[1].points.size(), 3u);
  EXPECT_EQ((*series)[1].points[1].x, 5001);
  EXPECT_EQ((*series)[1].points[1].y, 1.0 / 3);  // bit-exact through the migration
  EXPECT_EQ((*series)[1].points[2].y, 1e-300);
}

TEST_F(JobStoreTest, RefusesNewerSchemaVersion) {
  { ASSERT_TRUE(open_store()); }
  const int newer = job_store_schema_version() + 7;
  { Raw(path_).exec("PRAGMA user_version = " + std::to_string(newer)); }
  auto store = JobStore::open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.message().find(path_), std::string::npos) << store.message();
  EXPECT_NE(store.message().find(std::to_string(newer)), std::string::npos) << store.message();
  EXPECT_NE(store.message().find("(" + std::to_string(job_store_schema_version()) + ")"), std::string::npos)
      << store.message();
}

// Migration 3 renames the engine kinds' cpu_ metrics (results and the report
// columns of stored grid specs); other kinds' metrics and other names stay. The
// version-2 file is made by hand: the version-3 schema with user_version put back
// to 2 (migration 3 changes data only).
TEST_F(JobStoreTest, Migration3DropsTheBackendFromMetricNames) {
  { ASSERT_TRUE(open_store()); }
  {
    Raw raw(path_);
    raw.exec(testing::kUndoMigration7);
    raw.exec("INSERT INTO grids(id, name, spec_json, created_ms, updated_ms) VALUES (1, 'g', "
             "'{\"report\":[{\"columns\":[{\"metric\":\"cpu_tpot_ms\"},{\"metric\":\"cpu_peak_rss_bytes\"}]}]}', 0, 0)");
    raw.exec("INSERT INTO jobs(id, hash, kind, params_json, state, created_ms) VALUES "
             "(1, 'a', 'speed', '{}', 'succeeded', 0), (2, 'b', 'memory', '{}', 'succeeded', 0), "
             "(3, 'c', 'ppl', '{}', 'succeeded', 0), (4, 'd', 'roofline', '{}', 'succeeded', 0)");
    raw.exec("INSERT INTO runs(id, job_id, attempt, owner, state, started_ms) VALUES "
             "(1, 1, 1, 'w', 'succeeded', 0), (2, 2, 1, 'w', 'succeeded', 0), (3, 3, 1, 'w', 'succeeded', 0), "
             "(4, 4, 1, 'w', 'succeeded', 0)");
    raw.exec("INSERT INTO results(run_id, metric, value, unit) VALUES "
             "(1, 'cpu_tpot_ms', 2.5, 'ms'), (1, 'cpu_decode_tokens_per_s', 400, 'tokens/s'), "
             "(1, 'cpu_load_ms', 7, 'ms'), (1, 'cpu_prefill_ms', 3, 'ms'), (1, 'cpu_prefill_tokens_per_s', 9, ''), "
             "(1, 'cpu_decode_weight_gb_s', 1, 'GB/s'), (2, 'cpu_peak_rss_bytes', 1e6, 'B'), "
             "(2, 'kv_bytes', 10, 'B'), (3, 'cpu_eval_s', 1.5, 's'), (3, 'ppl', 12, ''), "
             "(4, 'cpu_tpot_ms', 1, 'ms')");
    raw.exec(testing::kUndoMigration6);
    raw.exec("PRAGMA user_version = 2");
    raw.exec("DELETE FROM schema_migrations WHERE version >= 3");
  }
  { ASSERT_TRUE(open_store()); }
  Raw raw(path_);
  EXPECT_EQ(raw.num("PRAGMA user_version"), job_store_schema_version());
  EXPECT_EQ(raw.str("SELECT group_concat(metric, ' ') FROM (SELECT metric FROM results WHERE run_id = 1 "
                    "ORDER BY metric)"),
            "decode_tokens_per_s decode_weight_gb_s load_ms prefill_ms prefill_tokens_per_s tpot_ms");
  EXPECT_EQ(raw.str("SELECT value FROM results WHERE run_id = 1 AND metric = 'tpot_ms'"), "2.5");
  EXPECT_EQ(raw.str("SELECT group_concat(metric, ' ') FROM (SELECT metric FROM results WHERE run_id = 2 "
                    "ORDER BY metric)"),
            "kv_bytes peak_rss_bytes");
  EXPECT_EQ(raw.str("SELECT group_concat(metric, ' ') FROM (SELECT metric FROM results WHERE run_id = 3 "
                    "ORDER BY metric)"),
            "eval_s ppl");
  // Not an engine kind: left as it was.
  EXPECT_EQ(raw.str("SELECT metric FROM results WHERE run_id = 4"), "cpu_tpot_ms");
  EXPECT_EQ(raw.str("SELECT spec_json FROM grids WHERE id = 1"),
            "{\"report\":[{\"columns\":[{\"metric\":\"tpot_ms\"},{\"metric\":\"peak_rss_bytes\"}]}]}");
}

// Migration 7 makes a run's metrics one row of results_data and `results` a view
// with the old table's columns: a version-6 file's metrics read the same, in the
// order they were stored, through the view and through grid_results, values
// bit-exact and text as it was.
TEST_F(JobStoreTest, Migration7KeepsEveryMetricInOrderAndExact) {
  const std::string odd_text = "say \"hi\"\\ \xc3\xbc" "ber\nnext";
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->submit_grid(make_grid("g", 2), false).ok());
    Lease a = must_lease(*store, "w");
    RunRecord r = record(1);
    r.metrics = {{"tok_per_s", 1.0 / 3, "tok/s", ""}, {"tiny", 1e-300, "", ""}, {"n", 3, "", ""},
                 {"max_context", std::nullopt, "", "oom"}, {"greedy", std::nullopt, "", odd_text}};
    ASSERT_TRUE(store->complete(a.run_id, "w", r).ok());
    Lease b = must_lease(*store, "w");
    ASSERT_TRUE(store->complete(b.run_id, "w", record(2)).ok());
  }
  {
    Raw raw(path_);
    raw.exec(kUndoMigration7);
    raw.exec("DELETE FROM schema_migrations WHERE version >= 7");
    raw.exec("PRAGMA user_version = 6");
    EXPECT_EQ(raw.str("SELECT type FROM sqlite_master WHERE name = 'results'"), "table");
    EXPECT_EQ(raw.num("SELECT COUNT(*) FROM results"), 8);
  }
  auto store = open_store();
  ASSERT_TRUE(store);
  Raw raw(path_);
  EXPECT_EQ(raw.str("SELECT type FROM sqlite_master WHERE name = 'results'"), "view");
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM results_data"), 2);
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM results"), 8);
  EXPECT_EQ(raw.str("SELECT group_concat(metric, ' ') FROM results WHERE run_id = 1"),
            "tok_per_s tiny n max_context greedy");
  EXPECT_EQ(raw.str("SELECT typeof(value) || ':' || value FROM results WHERE run_id = 1 AND metric = 'n'"), "real:3.0");
  EXPECT_EQ(raw.str("SELECT typeof(value) || ':' || text FROM results WHERE metric = 'max_context' AND run_id = 1"),
            "null:oom");
  EXPECT_EQ(raw.num("SELECT COUNT(*) FROM v_results WHERE grid = 'g'"), 8);
  auto rows = store->grid_results("g");
  ASSERT_TRUE(rows.ok()) << rows.message();
  ASSERT_EQ(rows->size(), 8u);
  EXPECT_EQ((*rows)[0].metric, "tok_per_s");
  EXPECT_EQ((*rows)[0].value, 1.0 / 3);  // bit-exact through the migration
  EXPECT_EQ((*rows)[1].value, 1e-300);
  EXPECT_FALSE((*rows)[3].value.has_value());
  EXPECT_EQ((*rows)[3].text, "oom");
  EXPECT_EQ((*rows)[4].text, odd_text);
  EXPECT_EQ((*rows)[5].metric, "tok_per_s");
  EXPECT_EQ((*rows)[5].value, 2.0);
}

}  // namespace
}  // namespace gb::coord

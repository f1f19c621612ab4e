// JobStore::submit_grid with a ReuseKey (issue 10): a succeeded measured job is reused
// only under the same build id and device class; otherwise it runs again and its old
// run and results stay, the newest success being the job's result. Theory-only jobs
// are reused whatever built or ran them.
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "coordinator/store/job_store.h"

namespace gb::coord {
namespace {

namespace fs = std::filesystem;

class JobStoreReuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = (fs::temp_directory_path() / ("gb_job_store_reuse_" + std::to_string(::getpid()) + "_" +
                                          info->name() + ".db"))
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
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::error_code ec;
      fs::remove(path_ + suffix, ec);
    }
  }
  // A grid of one measured job (`sleep`) and one theory job (`roofline`).
  static Grid grid() {
    Grid g;
    g.name = "g";
    g.source = "g.json";
    g.spec = nlohmann::ordered_json{{"name", "g"}};
    GridJob m;
    m.hash = "measured";
    m.kind = "sleep";
    m.params = Json{{"seconds", 0}};
    GridJob t;
    t.hash = "theory";
    t.kind = "roofline";
    t.params = Json{{"model", "synthetic:pythia-2.8b"}, {"batch_size", 1}};
    g.jobs = {m, t};
    return g;
  }
  // Leases and completes every pending job as built by `build` on device `name`,
  // with metric value `value`.
  void run_all(const std::string& build, const std::string& name, double value) {
    while (true) {
      auto l = store_->lease_next("w", 60000);
      ASSERT_TRUE(l.ok()) << l.message();
      if (!l->has_value()) break;
      RunRecord r;
      r.metrics.push_back({"slept_s", value, "s", ""});
      r.device = Json{{"kind", "cpu"}, {"name", name}};
      r.engine_version = build;
      ASSERT_TRUE(store_->complete((*l)->run_id, "w", r).ok());
    }
  }
  SubmitStats submit(const ReuseKey& key) {
    auto s = store_->submit_grid(grid(), false, 3, {}, key);
    EXPECT_TRUE(s.ok()) << s.message();
    return s.ok() ? *s : SubmitStats{};
  }
  // The value of the job's result (the newest success).
  double result_of(const std::string& hash) {
    auto r = store_->grid_results("g");
    EXPECT_TRUE(r.ok());
    for (const auto& row : *r)
      if (row.hash == hash && row.metric == "slept_s") return row.value.value_or(-1);
    return -1;
  }
  // Counted in the file, independently of JobStore.
  int64_t succeeded_runs() {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded'", -1, &st, nullptr),
              SQLITE_OK);
    EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
    const int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close_v2(db);
    return n;
  }
  std::string path_;
  std::unique_ptr<JobStore> store_;
};

TEST_F(JobStoreReuseTest, SameBuildAndDeviceReuses) {
  const ReuseKey key{"b1", {"cpu:X"}};
  EXPECT_EQ(submit(key).queued, 2);
  run_all("b1", "X", 1);
  SubmitStats s = submit(key);
  EXPECT_EQ(s.reused, 2);
  EXPECT_EQ(s.queued, 0);
  EXPECT_EQ(succeeded_runs(), 2);
}

TEST_F(JobStoreReuseTest, OtherBuildRerunsKeepingBothRunsNewestWins) {
  submit({"b1", {"cpu:X"}});
  run_all("b1", "X", 1);
  SubmitStats s = submit({"b2", {"cpu:X"}});
  EXPECT_EQ(s.reused, 1);  // the theory job
  EXPECT_EQ(s.queued, 1);
  EXPECT_EQ(result_of("measured"), 1);  // the old result until a new success
  run_all("b2", "X", 2);
  EXPECT_EQ(succeeded_runs(), 3);  // both runs of the measured job are kept
  EXPECT_EQ(result_of("measured"), 2);
  // Now current under b2.
  EXPECT_EQ(submit({"b2", {"cpu:X"}}).reused, 2);
}

TEST_F(JobStoreReuseTest, OtherDeviceClassReruns) {
  submit({"b1", {"cpu:X"}});
  run_all("b1", "X", 1);
  SubmitStats s = submit({"b1", {"cpu:Y", "cuda:X"}});
  EXPECT_EQ(s.reused, 1);
  EXPECT_EQ(s.queued, 1);
  // Any of the runner's classes matches.
  submit({"b1", {"cpu:Y"}});
  run_all("b1", "Y", 3);
  EXPECT_EQ(submit({"b1", {"cuda:Z", "cpu:Y"}}).reused, 2);
  EXPECT_EQ(result_of("measured"), 3);
}

TEST_F(JobStoreReuseTest, TheoryIsAlwaysReusedAndNoKeyReusesAll) {
  submit({"b1", {"cpu:X"}});
  run_all("b1", "X", 1);
  EXPECT_EQ(submit({"other", {}}).reused, 1);  // the theory job only
  run_all("other", "X", 1);
  auto s = store_->submit_grid(grid(), false);  // no ReuseKey: reuse as before
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->reused, 2);
}

TEST(DeviceClass, KindAndName) {
  EXPECT_EQ(device_class(Json{{"kind", "cuda"}, {"name", "NVIDIA H200"}, {"index", 0}}), "cuda:NVIDIA H200");
  EXPECT_EQ(device_class(Json{{"name", "cpu"}}), "");
  EXPECT_EQ(device_class(Json()), "");
}

}  // namespace
}  // namespace gb::coord

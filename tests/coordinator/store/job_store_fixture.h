// JobStoreTest's fixture (a database file of its own per test), direct sqlite3
// access as a `sqlite3` user would query, and the grids, records and leases the
// store's tests build on.
#pragma once

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "coordinator/store/job_store.h"

namespace gb::coord::testing {

namespace fs = std::filesystem;

// A database file of its own per test, removed (with -wal/-shm) before and after.
class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = (fs::temp_directory_path() /
             ("gb_job_store_" + std::to_string(::getpid()) + "_" + info->name() + ".db"))
                .string();
    remove_files();
  }
  void TearDown() override { remove_files(); }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::error_code ec;
      fs::remove(path_ + suffix, ec);
    }
  }
  std::unique_ptr<JobStore> open_store() {
    auto store = JobStore::open(path_);
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.message());
    if (!store.ok()) return nullptr;
    return std::move(*store);
  }
  std::string path_;
};

// Direct sqlite3 access, independent of JobStore, as a `sqlite3` user would query.
class Raw {
 public:
  explicit Raw(const std::string& path) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~Raw() { sqlite3_close_v2(db_); }
  // Every row, every column as text ("NULL" for NULL).
  std::vector<std::vector<std::string>> rows(const std::string& sql) {
    std::vector<std::vector<std::string>> out;
    char* err = nullptr;
    int rc = sqlite3_exec(
        db_, sql.c_str(),
        [](void* p, int n, char** vals, char**) {
          auto* o = static_cast<std::vector<std::vector<std::string>>*>(p);
          std::vector<std::string> row;
          for (int i = 0; i < n; ++i) row.push_back(vals[i] ? vals[i] : "NULL");
          o->push_back(std::move(row));
          return 0;
        },
        &out, &err);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (err ? err : "");
    sqlite3_free(err);
    return out;
  }
  std::string str(const std::string& sql) {
    auto r = rows(sql);
    return r.empty() || r[0].empty() ? "<no row>" : r[0][0];
  }
  int64_t num(const std::string& sql) { return std::stoll(str(sql)); }
  void exec(const std::string& sql) { rows(sql); }
  // Runs `sql` expecting nothing: the error text, "" when it ran (for statements
  // that should be refused).
  std::string error_of(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    std::string msg = rc == SQLITE_OK ? "" : (err ? err : "error");
    sqlite3_free(err);
    return msg;
  }

 private:
  sqlite3* db_ = nullptr;
};

inline GridJob make_job(const std::string& hash, int i) {
  GridJob j;
  j.hash = hash;
  j.kind = "roofline";
  j.params = Json{{"model", "synthetic:pythia-2.8b"}, {"batch_size", i + 1}};
  return j;
}

// A grid whose jobs have hashes PREFIX0, PREFIX1, ...
inline Grid make_grid(const std::string& name, int n, const std::string& prefix = "job") {
  Grid g;
  g.name = name;
  g.source = "experiments/" + name + ".json";
  g.spec = nlohmann::ordered_json{{"name", name}, {"axes", {{"batch_size", {1, 2}}}}};
  for (int i = 0; i < n; ++i) g.jobs.push_back(make_job(prefix + std::to_string(i), i));
  return g;
}

inline RunRecord record(double base) {
  RunRecord r;
  r.metrics.push_back({"tok_per_s", base, "tok/s", ""});
  r.metrics.push_back({"tpot_ms", base / 10, "ms", ""});
  r.metrics.push_back({"max_context", std::nullopt, "", "oom"});
  r.series.push_back({"decode_ms", "step", "ms", {{1, 10.5}, {2, 11.0}, {3, 11.5}}});
  r.device = Json{{"name", "cpu"}, {"memory_gib", 64}};
  r.engine_version = "0.1.0";
  r.wall_ms = 12.5;
  return r;
}

inline Lease must_lease(JobStore& s, const std::string& owner, int64_t lease_ms = 60000, const std::string& grid = "") {
  auto l = s.lease_next(owner, lease_ms, grid);
  EXPECT_TRUE(l.ok()) << (l.ok() ? "" : l.message());
  EXPECT_TRUE(l.ok() && l->has_value());
  if (!l.ok() || !l->has_value()) return {};
  return **l;
}

}  // namespace gb::coord::testing

// Jobs that run on another job's output (a "job:HASH" parameter value, as a grid's
// kv_calibration "job:kv_calibrate" is stored): the store leases such a job only
// after its dependency succeeded, with the calibration rebuilt from the dependency's
// series in its lease; a dependency that ends failed (its attempts spent) ends its
// pending dependents invalid without a run; both hold across a restart of the store
// (a coordinator restart: everything is in the file). dependency_waits and
// end_stranded_dependents: what a runner needs not to wait for a dependency that
// will not run. Not here: grids (tests/coordinator/grid/grid_measures_test.cc), the
// runners end to end (tests/cli/kv_formats_grid_test.cc, tests/integration/).
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "coordinator/store/job_store.h"

namespace gb::coord {
namespace {

namespace fs = std::filesystem;

class DependencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = (fs::temp_directory_path() / ("gb_deps_" + std::to_string(::getpid()) + "_" + info->name() + ".db"))
                .string();
    remove_files();
    reopen();
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
  // A restart: the store closed and opened again on the same file.
  void reopen() {
    store_.reset();
    auto s = JobStore::open(path_);
    ASSERT_TRUE(s.ok()) << s.message();
    store_ = std::move(*s);
  }
  std::map<std::string, StoredJob> jobs(const std::string& grid) {
    std::map<std::string, StoredJob> out;
    auto js = store_->grid_jobs(grid);
    EXPECT_TRUE(js.ok()) << js.message();
    if (js.ok())
      for (StoredJob& j : *js) out[j.hash] = std::move(j);
    return out;
  }
  std::optional<Lease> lease(const std::string& grid = "") {
    auto l = store_->lease_next("w", 60000, grid);
    EXPECT_TRUE(l.ok()) << l.message();
    return l.ok() ? *l : std::nullopt;
  }
  std::string path_;
  std::unique_ptr<JobStore> store_;
};

GridJob job(const std::string& hash, const std::string& kind, const Json& params) {
  GridJob j;
  j.hash = hash;
  j.kind = kind;
  j.params = params;
  return j;
}

GridJob calibration(const std::string& hash) {
  return job(hash, "kv_calibrate", {{"model", "hf:m"}, {"dataset", "text:c.txt"}, {"calib_keys", "rotated"}});
}

// A ppl job on `dep`'s calibration.
GridJob dependent(const std::string& hash, const std::string& dep) {
  return job(hash, "ppl", {{"model", "hf:m"}, {"dataset", "text:t.txt"}, {"kv_format", "int8-calib"},
                           {"kv_calibration", "job:" + dep}});
}

Grid grid_of(const std::string& name, std::vector<GridJob> js) {
  Grid g;
  g.name = name;
  g.source = name + ".json";
  g.spec = nlohmann::ordered_json{{"name", name}};
  g.jobs = std::move(js);
  return g;
}

// What a kv_calibrate job reports: 2 layers x 1 KV head, x = layer x heads + head.
RunRecord calibration_result() {
  RunRecord r;
  r.metrics.push_back(engine::value_metric("num_layers", 2, ""));
  r.metrics.push_back(engine::value_metric("num_kv_heads", 1, ""));
  const std::map<std::string, std::vector<double>> ranges = {
      {"k_min", {-1.5, -2.25}}, {"k_max", {1.0, 3.5}}, {"v_min", {-0.5, -0.75}}, {"v_max", {0.25, 4.0}}};
  for (const auto& [name, ys] : ranges) {
    engine::Series s;
    s.name = name;
    // Written in reverse: the calibration is rebuilt by x, not by insertion order.
    for (size_t i = ys.size(); i-- > 0;) s.points.push_back({static_cast<double>(i), ys[i]});
    r.series.push_back(s);
  }
  r.engine_version = "test";
  return r;
}

engine::Requirement anywhere(const GridJob&) { return engine::Requirement{}; }

TEST_F(DependencyTest, ADependentIsLeasedAfterItsDependencyWithTheCalibrationAcrossARestart) {
  // The dependent comes first in the grid: it is still not leased before the calibration.
  ASSERT_TRUE(store_->submit_grid(grid_of("g", {dependent("dep", "cal"), calibration("cal"),
                                               job("plain", "ppl", {{"model", "hf:m"}, {"dataset", "text:t.txt"}})}),
                                  false, 3, anywhere)
                  .ok());
  std::optional<Lease> cal = lease();
  ASSERT_TRUE(cal.has_value());
  EXPECT_EQ(cal->hash, "cal");
  std::optional<Lease> plain = lease();
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->hash, "plain");
  EXPECT_FALSE(lease().has_value()) << "the dependent waits for its calibration";
  auto waits = store_->dependency_waits("g");
  ASSERT_TRUE(waits.ok()) << waits.message();
  ASSERT_EQ(waits->size(), 1u);
  EXPECT_EQ((*waits)[0].hash, "dep");
  EXPECT_EQ((*waits)[0].dep_hash, "cal");
  EXPECT_EQ((*waits)[0].dep_kind, "kv_calibrate");
  EXPECT_EQ((*waits)[0].dep_state, JobState::kLeased);

  reopen();  // the coordinator restarts while the calibration runs
  EXPECT_FALSE(lease().has_value());
  ASSERT_TRUE(store_->complete(cal->run_id, "w", calibration_result()).ok());
  reopen();
  std::optional<Lease> dep = lease();
  ASSERT_TRUE(dep.has_value());
  EXPECT_EQ(dep->hash, "dep");
  ASSERT_TRUE(dep->params["kv_calibration"].is_string());
  const Json c = Json::parse(dep->params["kv_calibration"].get<std::string>());
  EXPECT_EQ(c["format"], "gridbench-kv-calibration");
  EXPECT_EQ(c["version"], 1);
  EXPECT_EQ(c["num_layers"], 2);
  EXPECT_EQ(c["num_kv_heads"], 1);
  EXPECT_EQ(c["keys"], "rotated");
  EXPECT_EQ(c["model"], "hf:m");
  EXPECT_EQ(c["layers"], Json::parse(R"([{"k_min": [-1.5], "k_max": [1.0], "v_min": [-0.5], "v_max": [0.25]},
                                        {"k_min": [-2.25], "k_max": [3.5], "v_min": [-0.75], "v_max": [4.0]}])"));
  // The stored job keeps the reference (its hash covers the dependency's).
  EXPECT_EQ(jobs("g")["dep"].params["kv_calibration"], "job:cal");
  waits = store_->dependency_waits("g");
  ASSERT_TRUE(waits.ok());
  EXPECT_TRUE(waits->empty());
}

TEST_F(DependencyTest, ADependencysFailureEndsItsDependentsInvalidWithoutARun) {
  ASSERT_TRUE(store_->submit_grid(grid_of("g", {calibration("cal"), dependent("dep", "cal"),
                                               job("plain", "ppl", {{"model", "hf:m"}, {"dataset", "text:t.txt"}})}),
                                  false, /*max_attempts=*/2, anywhere)
                  .ok());
  std::optional<Lease> first = lease();
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->hash, "cal");
  // A failure with an attempt left: the calibration is pending again, so is its dependent.
  ASSERT_TRUE(store_->fail(first->run_id, "w", JobState::kFailed, "boom").ok());
  EXPECT_EQ(jobs("g")["dep"].state, JobState::kPending);
  reopen();
  std::optional<Lease> second = lease();
  ASSERT_TRUE(second.has_value());
  ASSERT_EQ(second->hash, "cal");
  reopen();  // a restart between the lease and the failure
  ASSERT_TRUE(store_->fail(second->run_id, "w", JobState::kFailed, "no sample of two tokens").ok());
  std::map<std::string, StoredJob> js = jobs("g");
  EXPECT_EQ(js["cal"].state, JobState::kFailed);
  EXPECT_EQ(js["dep"].state, JobState::kInvalid);
  EXPECT_EQ(js["dep"].error, "its dependency kv_calibrate job cal ended failed: no sample of two tokens");
  EXPECT_EQ(js["dep"].attempts, 0);  // never leased
  EXPECT_EQ(js["plain"].state, JobState::kPending);
  std::optional<Lease> next = lease();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->hash, "plain");

  // Submitted again, both go back to pending, and the dependent waits again.
  ASSERT_TRUE(store_->submit_grid(grid_of("g", {calibration("cal"), dependent("dep", "cal")}), false, 2, anywhere).ok());
  js = jobs("g");
  EXPECT_EQ(js["cal"].state, JobState::kPending);
  EXPECT_EQ(js["dep"].state, JobState::kPending);
  next = lease();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->hash, "cal");
  // An oom or invalid calibration ends it at once, and its dependent with it.
  ASSERT_TRUE(store_->fail(next->run_id, "w", JobState::kOom, "needs 9 GiB").ok());
  EXPECT_EQ(jobs("g")["dep"].error, "its dependency kv_calibrate job cal ended oom: needs 9 GiB");
}

// A dependency that ended before its dependent was submitted (here in another grid)
// is not waited for: end_stranded_dependents ends the dependent invalid. One that is
// pending for another device is reported with its requirement.
TEST_F(DependencyTest, WaitsNameTheirDependencyAndStrandedDependentsEndInvalid) {
  ASSERT_TRUE(store_->submit_grid(grid_of("a", {calibration("cal")}), false, 1, anywhere).ok());
  std::optional<Lease> cal = lease();
  ASSERT_TRUE(cal.has_value());
  ASSERT_TRUE(store_->fail(cal->run_id, "w", JobState::kInvalid, "dataset: no such file").ok());
  auto on_cuda = [](const GridJob& j) {
    engine::Requirement r;
    if (j.kind == "kv_calibrate") {
      r.device = "cuda";
      r.memory_bytes = 1000;
    }
    return r;
  };
  ASSERT_TRUE(store_->submit_grid(grid_of("b", {dependent("dep", "cal"), calibration("cal2"),
                                               dependent("dep2", "cal2")}),
                                  false, 1, on_cuda)
                  .ok());
  auto waits = store_->dependency_waits("b");
  ASSERT_TRUE(waits.ok()) << waits.message();
  ASSERT_EQ(waits->size(), 2u);
  EXPECT_EQ((*waits)[0].hash, "dep");
  EXPECT_EQ((*waits)[0].dep_state, JobState::kInvalid);
  EXPECT_EQ((*waits)[0].dep_error, "dataset: no such file");
  EXPECT_EQ((*waits)[1].hash, "dep2");
  EXPECT_EQ((*waits)[1].dep_hash, "cal2");
  EXPECT_EQ((*waits)[1].dep_state, JobState::kPending);
  EXPECT_EQ((*waits)[1].dep_req_device, "cuda");
  EXPECT_EQ((*waits)[1].dep_req_memory_bytes, 1000);
  DeviceCapacity cpu;
  cpu.add_device("cpu", 1e12);
  auto none = store_->lease_next("w", 60000, "b", &cpu);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value()) << (*none)->hash;

  auto ended = store_->end_stranded_dependents("b");
  ASSERT_TRUE(ended.ok()) << ended.message();
  ASSERT_EQ(ended->size(), 1u);
  EXPECT_EQ((*ended)[0].hash, "dep");
  std::map<std::string, StoredJob> js = jobs("b");
  EXPECT_EQ(js["dep"].state, JobState::kInvalid);
  EXPECT_EQ(js["dep"].error, "its dependency kv_calibrate job cal ended invalid: dataset: no such file");
  EXPECT_EQ(js["dep2"].state, JobState::kPending);
  ended = store_->end_stranded_dependents("b");
  ASSERT_TRUE(ended.ok());
  EXPECT_TRUE(ended->empty());
}

}  // namespace
}  // namespace gb::coord

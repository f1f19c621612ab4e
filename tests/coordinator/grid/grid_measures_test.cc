// A grid's measure entries with parameters of their own ({"kind": ..., PARAM: VALUE})
// and "job:KIND" references to another measure's output (kv_calibration): what
// the jobs come out as, their hashes, and the errors.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coordinator/grid/grid.h"

namespace gb::coord {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kData = std::string(GB_SOURCE_DIR) + "/tests/data";
const std::string kModel = "hf:" + kData + "/reference_model";
const std::string kText = "text:" + kData + "/reference_model/heldout.txt";
const std::string kMmlu = "mmlu:" + kData + "/reference_model/mc";

Result<Grid> load(const Json& doc) {
  const std::string path =
      (fs::path(::testing::TempDir()) /
       ("gb_grid_measures_" + std::to_string(::getpid()) + "_" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".json"))
          .string();
  std::ofstream(path) << doc.dump(1);
  Result<Grid> g = load_grid(path);
  fs::remove(path);
  return g;
}

const GridJob* job_of(const Grid& g, const std::string& kind, const Json& where = Json::object()) {
  for (const GridJob& j : g.jobs) {
    if (j.kind != kind) continue;
    bool match = true;
    for (const auto& [k, v] : where.items()) match = match && j.params.value(k, Json()) == v;
    if (match) return &j;
  }
  return nullptr;
}

// ppl on the grid's text and mc_accuracy on an MMLU directory of its own, in one
// grid: each kind's jobs take the measure's parameters over the point's, and a job
// hashes as the same job of a grid that gives the value at the point.
TEST(GridMeasures, AMeasuresOwnParametersReplaceThePointsForItsJobsAlone) {
  const Json doc = {{"name", "own"},
                    {"axes", {{"weight_format", {"f16", "int8-channel"}}}},
                    {"fixed", {{"model", kModel}, {"dataset", kText}, {"context", 16}}},
                    {"measure", {"ppl", {{"kind", "mc_accuracy"}, {"dataset", kMmlu}, {"shots", 0}}}}};
  Result<Grid> g = load(doc);
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_EQ(g->jobs.size(), 4u);
  for (const GridJob& j : g->jobs) {
    if (j.kind == "ppl") {
      EXPECT_EQ(j.params["dataset"], kText);
      EXPECT_FALSE(j.params.contains("shots"));
    } else {
      EXPECT_EQ(j.params["dataset"], kMmlu);
      EXPECT_EQ(j.params["shots"], 0);
    }
  }
  EXPECT_EQ(g->measures, (std::vector<std::string>{"ppl", "mc_accuracy"}));

  Json plain = doc;
  plain["fixed"]["dataset"] = kMmlu;
  plain["fixed"]["shots"] = 0;
  plain["measure"] = {"mc_accuracy"};
  Result<Grid> p = load(plain);
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->jobs.size(), 2u);
  for (const GridJob& j : p->jobs) {
    const GridJob* same = job_of(*g, "mc_accuracy", {{"weight_format", j.params["weight_format"]}});
    ASSERT_NE(same, nullptr);
    EXPECT_EQ(same->hash, j.hash);
  }
}

TEST(GridMeasures, BadMeasureEntriesNameTheirPath) {
  auto err = [&](const Json& measure) {
    Json doc = {{"name", "bad"}, {"axes", {{"context", {16}}}}, {"fixed", {{"model", kModel}, {"dataset", kText}}},
                {"measure", measure}};
    Result<Grid> g = load(doc);
    EXPECT_FALSE(g.ok());
    return g.ok() ? std::string() : g.error().message;
  };
  EXPECT_THAT(err({{{"dataset", kMmlu}}}), HasSubstr("$.measure[0]: expected a \"kind\""));
  EXPECT_THAT(err({{{"kind", 3}}}), HasSubstr("$.measure[0].kind: expected a job kind name"));
  EXPECT_THAT(err({{{"kind", "ppl"}, {"shots", 1}}}),
              HasSubstr("$.measure[0].shots: job kind 'ppl' does not take parameter 'shots'"));
  EXPECT_THAT(err({{{"kind", "ppl"}, {"chunks", 0}}}), HasSubstr("$.measure[0].chunks: expected an integer >= 1"));
  EXPECT_THAT(err({{{"kind", "ppl"}, {"no_such", 1}}}), HasSubstr("$.measure[0].no_such: unknown job parameter 'no_such'"));
  EXPECT_THAT(err({"ppl", {{"kind", "ppl"}, {"chunks", 1}}}), HasSubstr("$.measure[1].kind: duplicate job kind 'ppl'"));
}

// kv_calibration "job:kv_calibrate": the int8-calib jobs of each point name that
// point's calibration job by its hash (so theirs covers it), the other formats'
// jobs take no calibration, and the calibration job comes first.
TEST(GridMeasures, AJobReferenceBecomesTheDependencysHash) {
  const Json doc = {
      {"name", "calib"},
      {"axes", {{"kv_format", {"int8", "int8-calib"}}, {"batch_size", {1, 2}}}},
      {"fixed", {{"model", kModel}, {"dataset", kText}, {"context", 16}, {"kv_calibration", "job:kv_calibrate"}}},
      {"measure", {"ppl", {{"kind", "kv_calibrate"}, {"calib_samples", 2}}}}};
  Result<Grid> g = load(doc);
  ASSERT_TRUE(g.ok()) << g.error().message;
  const GridJob* calib = job_of(*g, "kv_calibrate");
  ASSERT_NE(calib, nullptr);
  EXPECT_EQ(calib->params["calib_samples"], 2);
  EXPECT_FALSE(calib->params.contains("kv_calibration"));
  size_t ppl = 0;
  for (const GridJob& j : g->jobs) {
    if (j.kind == "kv_calibrate") {
      EXPECT_EQ(&j, calib) << "one calibration job: batch_size and kv_format are not its parameters";
      continue;
    }
    ++ppl;
    if (j.params["kv_format"] == "int8-calib")
      EXPECT_EQ(j.params["kv_calibration"], "job:" + calib->hash);
    else
      EXPECT_FALSE(j.params.contains("kv_calibration"));
  }
  EXPECT_EQ(ppl, 4u);
  EXPECT_LT(calib - g->jobs.data(), job_of(*g, "ppl", {{"kv_format", "int8-calib"}}) - g->jobs.data());

  // Another calibration: other dependents; the int8 jobs keep their hashes.
  Json other = doc;
  other["measure"][1]["calib_samples"] = 3;
  Result<Grid> o = load(other);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_NE(job_of(*o, "kv_calibrate")->hash, calib->hash);
  for (int b : {1, 2}) {
    EXPECT_NE(job_of(*o, "ppl", {{"kv_format", "int8-calib"}, {"batch_size", b}})->hash,
              job_of(*g, "ppl", {{"kv_format", "int8-calib"}, {"batch_size", b}})->hash);
    EXPECT_EQ(job_of(*o, "ppl", {{"kv_format", "int8"}, {"batch_size", b}})->hash,
              job_of(*g, "ppl", {{"kv_format", "int8"}, {"batch_size", b}})->hash);
  }
}

// Where a reference stands, its path: refused even where no job would take it (no
// int8-calib point), in axes, include and a measure's own parameters alike.
TEST(GridMeasures, ABadJobReferenceIsRefusedWhereItStands) {
  auto err = [&](const Json& axes, const Json& extra, const Json& measure) {
    Json doc = {{"name", "bad"},
                {"axes", axes},
                {"fixed", {{"model", kModel}, {"dataset", kText}, {"context", 16}}},
                {"measure", measure}};
    for (const auto& [k, v] : extra.items()) doc[k] = v;
    Result<Grid> g = load(doc);
    EXPECT_FALSE(g.ok());
    return g.ok() ? std::string() : g.error().message;
  };
  const Json calibrate = {{"kind", "kv_calibrate"}, {"calib_samples", 2}};
  EXPECT_THAT(err({{"kv_format", {"int8"}}, {"kv_calibration", {"job:kv_calibrate", "job:nonexistent"}}},
                  Json::object(), {"ppl", calibrate}),
              HasSubstr("$.axes.kv_calibration[1]: expected \"job:kv_calibrate\" (the calibration of this grid's "
                        "kv_calibrate measure at the same point) or a calibration file, got \"job:nonexistent\""));
  EXPECT_THAT(err({{"kv_format", {"int8"}}}, {{"include", {{{"kv_format", "int8-calib"}, {"kv_calibration", "job:kv_calibrate"}}}}},
                  {"ppl", "memory"}),
              HasSubstr("$.include[0].kv_calibration: \"job:kv_calibrate\" names this grid's kv_calibrate measure, "
                        "but it has none (measure: ppl, memory)"));
  EXPECT_THAT(err({{"kv_format", {"int8-calib"}}}, Json::object(),
                  {{{"kind", "ppl"}, {"kv_calibration", "job:ppl"}}, calibrate}),
              HasSubstr("$.measure[0].kv_calibration: expected \"job:kv_calibrate\""));
  EXPECT_THAT(err({{"kv_format", {"int8-calib"}}}, Json::object(),
                  {"ppl", {{"kind", "kv_calibrate"}, {"kv_calibration", "job:kv_calibrate"}}}),
              HasSubstr("$.measure[1].kv_calibration: a kv_calibrate measure cannot depend on another job's output"));
}

}  // namespace
}  // namespace gb::coord

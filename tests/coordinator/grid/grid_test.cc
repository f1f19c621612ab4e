#include "coordinator/grid/grid.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/json_util.h"
#include "coordinator/grid/grid_yaml.h"
#include "engine/jobs/job_kinds.h"

namespace gb::coord {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using OJson = nlohmann::ordered_json;

// Each test writes its files into a fresh directory under the gtest temp dir.
class GridTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("gb_grid_test_" + std::to_string(::getpid()) + "_" + info->name() + "_" + std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes `text` to DIR/name and returns the path.
  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  Grid load_ok(const std::string& name, const std::string& text) {
    std::string path = write(name, text);
    auto g = load_grid(path);
    EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.message());
    if (!g.ok()) return Grid{};
    return std::move(g).value();
  }

  // The error message of a grid that must fail.
  std::string load_err(const std::string& name, const std::string& text) {
    std::string path = write(name, text);
    auto g = load_grid(path);
    EXPECT_FALSE(g.ok()) << "expected " << name << " to be rejected";
    return g.ok() ? "" : g.message();
  }

  // The message lines, without the "PATH: " prefix (the temp dir varies).
  std::vector<std::string> lines(const std::string& msg, const std::string& name) {
    std::string prefix = (dir_ / name).string() + ": ";
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= msg.size()) {
      size_t end = msg.find('\n', start);
      if (end == std::string::npos) end = msg.size();
      std::string line = msg.substr(start, end - start);
      EXPECT_THAT(line, StartsWith(prefix));
      if (line.rfind(prefix, 0) == 0) line = line.substr(prefix.size());
      out.push_back(line);
      start = end + 1;
    }
    return out;
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

// A valid roofline grid: 2 models x 3 weight formats, kv and device fixed.
const char* kBasic = R"({
  "name": "basic",
  "axes": {
    "model": ["qwen1.5-0.5b", "qwen1.5-7b"],
    "weight_format": ["f16", "int8-channel", "int4-g128"]
  },
  "fixed": {"kv_format": "f16", "device": "rtx4090", "context": 4096},
  "measure": ["roofline"]
})";

std::vector<std::string> hashes(const Grid& g) {
  std::vector<std::string> out;
  for (const auto& j : g.jobs) out.push_back(j.hash);
  return out;
}

std::string expected_hash(const std::string& kind, const Json& params, int repeat = 0) {
  Json key = {{"kind", kind}, {"params", normalize_json(params)}};
  if (repeat > 0) key["repeat"] = repeat;
  return content_hash(key);
}

std::string known_params() {
  std::string out;
  for (const auto& p : engine::job_params()) out += (out.empty() ? "" : ", ") + p.name;
  return out;
}

std::string known_kinds() {
  std::string out;
  for (const auto& k : engine::job_kinds()) out += (out.empty() ? "" : ", ") + k.name;
  return out;
}

// ---------------------------------------------------------------- expansion

TEST_F(GridTest, ExpandsCrossProductFirstAxisOutermost) {
  Grid g = load_ok("g.json", kBasic);
  EXPECT_EQ(g.name, "basic");
  EXPECT_EQ(g.axis_names, (std::vector<std::string>{"model", "weight_format"}));
  EXPECT_EQ(g.measures, (std::vector<std::string>{"roofline"}));
  EXPECT_EQ(g.repeats, 1);
  ASSERT_EQ(g.points.size(), 6u);
  const std::vector<std::pair<std::string, std::string>> order = {
      {"qwen1.5-0.5b", "f16"}, {"qwen1.5-0.5b", "int8-channel"}, {"qwen1.5-0.5b", "int4-g128"},
      {"qwen1.5-7b", "f16"},   {"qwen1.5-7b", "int8-channel"},   {"qwen1.5-7b", "int4-g128"}};
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(g.points[i]["model"], order[i].first) << i;
    EXPECT_EQ(g.points[i]["weight_format"], order[i].second) << i;
    EXPECT_EQ(g.points[i]["kv_format"], "f16");
    EXPECT_EQ(g.points[i]["device"], "rtx4090");
    EXPECT_EQ(g.points[i]["context"], 4096);
  }
  ASSERT_EQ(g.jobs.size(), 6u);
  for (size_t i = 0; i < g.jobs.size(); ++i) {
    const GridJob& j = g.jobs[i];
    EXPECT_EQ(j.kind, "roofline");
    EXPECT_EQ(j.repeat, 0);
    Json want = normalize_json(engine::project_params(*engine::find_job_kind("roofline"), g.points[i]));
    EXPECT_EQ(j.params, want);
    EXPECT_EQ(j.hash, expected_hash("roofline", j.params));
    EXPECT_EQ(j.hash.size(), 16u);
  }
  EXPECT_EQ(g.source, path("g.json"));
  EXPECT_EQ(g.spec["axes"].begin().key(), "model");  // file order kept
  EXPECT_TRUE(g.reports.empty());
}

TEST_F(GridTest, AxisOrderFollowsTheFileNotTheAlphabet) {
  Grid g = load_ok("g.json", R"({
    "name": "order",
    "axes": {"weight_format": ["f16", "int8-channel"], "model": ["qwen1.5-7b", "qwen1.5-0.5b"]},
    "fixed": {"kv_format": "f16", "device": "rtx4090"},
    "measure": ["roofline"]
  })");
  ASSERT_EQ(g.points.size(), 4u);
  EXPECT_EQ(g.axis_names, (std::vector<std::string>{"weight_format", "model"}));
  EXPECT_EQ(g.points[0]["weight_format"], "f16");
  EXPECT_EQ(g.points[0]["model"], "qwen1.5-7b");
  EXPECT_EQ(g.points[1]["weight_format"], "f16");
  EXPECT_EQ(g.points[1]["model"], "qwen1.5-0.5b");
  EXPECT_EQ(g.points[2]["weight_format"], "int8-channel");
  EXPECT_EQ(g.points[2]["model"], "qwen1.5-7b");
}

TEST_F(GridTest, ExcludeRemovesMatchingPointsAndIncludeAppendsWithFixedUnderneath) {
  Grid g = load_ok("g.json", R"({
    "name": "inc-exc",
    "axes": {
      "model": ["qwen1.5-0.5b", "qwen1.5-7b"],
      "weight_format": ["f16", "int8-channel", "int4-g128"]
    },
    "fixed": {"kv_format": "f16", "device": "rtx4090"},
    "exclude": [{"model": "qwen1.5-0.5b", "weight_format": "int4-g128"}, {"weight_format": "int8-channel"}],
    "include": [
      {"model": "llama-3-8b", "weight_format": "f32"},
      {"model": "llama-3-8b", "weight_format": "f16", "device": "h100-sxm"}
    ],
    "measure": ["roofline"]
  })");
  // 6 - 1 (first exclude) - 2 (second exclude) + 2 includes.
  ASSERT_EQ(g.points.size(), 5u);
  EXPECT_EQ(g.points[0], Json({{"model", "qwen1.5-0.5b"}, {"weight_format", "f16"}, {"kv_format", "f16"},
                               {"device", "rtx4090"}}));
  EXPECT_EQ(g.points[1]["model"], "qwen1.5-7b");
  EXPECT_EQ(g.points[1]["weight_format"], "f16");
  EXPECT_EQ(g.points[2]["model"], "qwen1.5-7b");
  EXPECT_EQ(g.points[2]["weight_format"], "int4-g128");
  EXPECT_EQ(g.points[3], Json({{"model", "llama-3-8b"}, {"weight_format", "f32"}, {"kv_format", "f16"},
                               {"device", "rtx4090"}}));
  EXPECT_EQ(g.points[4]["device"], "h100-sxm");  // an include overrides fixed
  EXPECT_EQ(g.jobs.size(), 5u);
}

TEST_F(GridTest, IncludeMayReaddAnExcludedPoint) {
  Grid g = load_ok("g.json", R"({
    "name": "readd",
    "axes": {"model": ["qwen1.5-0.5b", "qwen1.5-7b"]},
    "fixed": {"weight_format": "f16", "kv_format": "f16", "device": "rtx4090"},
    "exclude": [{"model": "qwen1.5-0.5b"}],
    "include": [{"model": "qwen1.5-0.5b"}],
    "measure": ["roofline"]
  })");
  ASSERT_EQ(g.points.size(), 2u);
  EXPECT_EQ(g.points[0]["model"], "qwen1.5-7b");
  EXPECT_EQ(g.points[1]["model"], "qwen1.5-0.5b");
}

TEST_F(GridTest, IncludeOnlyGridNeedsNoAxes) {
  Grid g = load_ok("g.json", R"({
    "name": "points",
    "include": [
      {"model": "qwen1.5-7b", "weight_format": "f16", "kv_format": "f16", "device": "rtx4090"},
      {"model": "qwen1.5-7b", "weight_format": "q4_0", "kv_format": "int8", "device": "rtx4090"}
    ],
    "measure": ["roofline"]
  })");
  EXPECT_TRUE(g.axis_names.empty());
  ASSERT_EQ(g.points.size(), 2u);
  EXPECT_EQ(g.jobs.size(), 2u);
  EXPECT_EQ(g.points[1]["weight_format"], "q4_0");
}

TEST_F(GridTest, TheoryOnlyKindsRunOnceWhateverTheRepeats) {
  std::string text = kBasic;
  text.replace(text.find("\"measure\""), 0, "\"repeats\": 3,\n  ");
  Grid g = load_ok("g.json", text);
  EXPECT_EQ(g.repeats, 3);
  ASSERT_TRUE(engine::find_job_kind("roofline")->theory_only);
  ASSERT_EQ(g.jobs.size(), 6u);
  for (const auto& j : g.jobs) EXPECT_EQ(j.repeat, 0);
  // Repeats do not change the hashes of repeat 0.
  EXPECT_EQ(hashes(g), hashes(load_ok("h.json", kBasic)));
}

// Repeats of measured (not theory-only) kinds: needs such a kind in the registry
// and sample values for its required parameters.
TEST_F(GridTest, MeasuredKindsRepeat) {
  // `sleep` is a measured kind: each point runs `repeats` times, repeat 0 keeping
  // the hash it has without repeats.
  OJson doc = OJson::parse(R"({"name": "rep", "axes": {"seconds": [0.01, 0.02]}, "measure": ["sleep"],
                               "repeats": 3})");
  auto g = parse_grid(doc, "rep.json");
  ASSERT_TRUE(g.ok()) << g.message();
  ASSERT_EQ(g->jobs.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(g->jobs[i].repeat, static_cast<int>(i % 3));
    EXPECT_EQ(g->jobs[i].hash, expected_hash("sleep", g->jobs[i].params, g->jobs[i].repeat));
  }
  EXPECT_EQ(g->jobs[0].params, g->jobs[1].params);
  EXPECT_NE(g->jobs[0].hash, g->jobs[1].hash);
  // Fewer repeats: a prefix of the same hashes per point; one repeat: the plain hash.
  doc["repeats"] = 2;
  auto g2 = parse_grid(doc, "rep.json");
  ASSERT_TRUE(g2.ok()) << g2.message();
  ASSERT_EQ(g2->jobs.size(), 4u);
  EXPECT_EQ(g2->jobs[0].hash, g->jobs[0].hash);
  EXPECT_EQ(g2->jobs[1].hash, g->jobs[1].hash);
  EXPECT_EQ(g2->jobs[2].hash, g->jobs[3].hash);
  doc.erase("repeats");
  auto g1 = parse_grid(doc, "rep.json");
  ASSERT_TRUE(g1.ok()) << g1.message();
  ASSERT_EQ(g1->jobs.size(), 2u);
  EXPECT_EQ(g1->jobs[1].hash, g->jobs[3].hash);
}

// Repeats and projection across measures, with a measured kind made up here.
TEST(ExpandJobs, RepeatsAndProjectionAcrossMeasures) {
  const engine::JobKind* roofline = engine::find_job_kind("roofline");
  ASSERT_NE(roofline, nullptr);
  engine::JobKind speed;
  speed.name = "speed-test";
  speed.required = {"model", "weight_format"};
  speed.optional = {"seed", "gen_tokens"};
  std::vector<Json> points;
  for (int seed : {1, 2}) {
    points.push_back({{"model", "qwen1.5-7b"}, {"weight_format", "f16"}, {"kv_format", "f16"},
                      {"device", "rtx4090"}, {"seed", seed}, {"gen_tokens", 32.0}});
  }
  std::vector<GridJob> jobs = expand_jobs(points, {roofline, &speed}, 3);
  // point 0: roofline, speed r0..r2; point 1: roofline again (deduplicated), speed r0..r2.
  ASSERT_EQ(jobs.size(), 7u);
  const std::vector<std::pair<std::string, int>> want = {{"roofline", 0},   {"speed-test", 0}, {"speed-test", 1},
                                                         {"speed-test", 2}, {"speed-test", 0}, {"speed-test", 1},
                                                         {"speed-test", 2}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(jobs[i].kind, want[i].first) << i;
    EXPECT_EQ(jobs[i].repeat, want[i].second) << i;
    EXPECT_EQ(jobs[i].hash, expected_hash(jobs[i].kind, jobs[i].params, jobs[i].repeat)) << i;
  }
  EXPECT_EQ(jobs[1].params, Json({{"model", "qwen1.5-7b"}, {"weight_format", "f16"}, {"seed", 1}, {"gen_tokens", 32}}));
  EXPECT_TRUE(jobs[1].params["gen_tokens"].is_number_integer());
  EXPECT_EQ(jobs[4].params["seed"], 2);
  EXPECT_FALSE(jobs[0].params.contains("seed"));
  // Repeat 0 hashes like a job without repeats; more repeats keep the hashes.
  std::vector<GridJob> once = expand_jobs(points, {roofline, &speed}, 1);
  ASSERT_EQ(once.size(), 3u);
  EXPECT_EQ(once[0].hash, jobs[0].hash);
  EXPECT_EQ(once[1].hash, jobs[1].hash);
  EXPECT_EQ(once[2].hash, jobs[4].hash);
  std::set<std::string> unique;
  for (const auto& j : jobs) unique.insert(j.hash);
  EXPECT_EQ(unique.size(), jobs.size());
}

TEST_F(GridTest, ProjectionDropsParametersTheKindDoesNotTakeAndDedupes) {
  // roofline takes no seed, dataset or gen_tokens: both seeds give the same job.
  Grid g = load_ok("g.json", R"({
    "name": "proj",
    "axes": {"model": ["qwen1.5-0.5b", "qwen1.5-7b"], "seed": [1, 2]},
    "fixed": {"weight_format": "f16", "kv_format": "f16", "device": "rtx4090", "gen_tokens": 32},
    "measure": ["roofline"]
  })");
  ASSERT_FALSE(engine::find_job_kind("roofline")->optional.empty());
  EXPECT_EQ(g.points.size(), 4u);
  EXPECT_EQ(g.points[1]["seed"], 2);
  ASSERT_EQ(g.jobs.size(), 2u);
  EXPECT_EQ(g.jobs[0].params["model"], "qwen1.5-0.5b");
  EXPECT_EQ(g.jobs[1].params["model"], "qwen1.5-7b");
  for (const auto& j : g.jobs) {
    EXPECT_FALSE(j.params.contains("seed"));
    EXPECT_FALSE(j.params.contains("gen_tokens"));
  }
}

// ---------------------------------------------------------------- hashes

TEST_F(GridTest, HashIgnoresKeyOrderAndNumberSpelling) {
  Grid a = load_ok("a.json", kBasic);
  Grid b = load_ok("b.json", R"({
    "measure": ["roofline"],
    "fixed": {"context": 4096.0, "device": "rtx4090", "kv_format": "f16"},
    "axes": {
      "model": ["qwen1.5-0.5b", "qwen1.5-7b"],
      "weight_format": ["f16", "int8-channel", "int4-g128"]
    },
    "name": "basic-reordered"
  })");
  EXPECT_EQ(hashes(a), hashes(b));
  EXPECT_EQ(b.jobs[0].params["context"], 4096);
  EXPECT_TRUE(b.jobs[0].params["context"].is_number_integer());
}

TEST_F(GridTest, ObjectValuedParametersHashByContentNotKeyOrder) {
  const char* t1 = R"({"name": "d1", "axes": {"model": ["qwen1.5-7b"]},
    "fixed": {"weight_format": "f16", "kv_format": "f16",
              "device": {"name": "mine", "memory_gib": 24, "bandwidth_gib_s": 1000, "tflops": 80}},
    "measure": ["roofline"]})";
  const char* t2 = R"({"name": "d2", "axes": {"model": ["qwen1.5-7b"]},
    "fixed": {"weight_format": "f16", "kv_format": "f16",
              "device": {"tflops": 80.0, "bandwidth_gib_s": 1000, "memory_gib": 24.0, "name": "mine"}},
    "measure": ["roofline"]})";
  EXPECT_EQ(hashes(load_ok("a.json", t1)), hashes(load_ok("b.json", t2)));
}

TEST_F(GridTest, AddingAnAxisValueKeepsExistingHashes) {
  Grid small = load_ok("a.json", kBasic);
  std::string bigger = kBasic;
  bigger.replace(bigger.find("\"qwen1.5-7b\""), std::string("\"qwen1.5-7b\"").size(),
                 "\"qwen1.5-7b\", \"llama-3-8b\"");
  bigger.replace(bigger.find("\"int4-g128\""), std::string("\"int4-g128\"").size(), "\"int4-g128\", \"q4_0\"");
  Grid big = load_ok("b.json", bigger);
  ASSERT_EQ(big.jobs.size(), 12u);
  const std::vector<std::string> big_hashes = hashes(big);
  std::set<std::string> all(big_hashes.begin(), big_hashes.end());
  for (const auto& h : hashes(small)) EXPECT_TRUE(all.count(h)) << h;
}

TEST_F(GridTest, SameGridSameJobsSameOrder) {
  Grid a = load_ok("a.json", kBasic);
  Grid b = load_ok("a.json", kBasic);
  ASSERT_EQ(a.jobs.size(), b.jobs.size());
  for (size_t i = 0; i < a.jobs.size(); ++i) {
    EXPECT_EQ(a.jobs[i].hash, b.jobs[i].hash);
    EXPECT_EQ(a.jobs[i].params, b.jobs[i].params);
  }
  const std::vector<std::string> a_hashes = hashes(a);
  std::set<std::string> unique(a_hashes.begin(), a_hashes.end());
  EXPECT_EQ(unique.size(), a.jobs.size());
}

// ---------------------------------------------------------------- YAML

const char* kBasicYaml = R"(# the basic grid, in YAML
name: basic
axes:
  model: [qwen1.5-0.5b, qwen1.5-7b]
  weight_format:
    - f16
    - int8-channel
    - "int4-g128"
fixed:
  kv_format: f16
  device: rtx4090
  context: 4096
measure: [roofline]
)";

TEST_F(GridTest, YamlEqualsJson) {
  Grid j = load_ok("g.json", kBasic);
  Grid y = load_ok("g.yaml", kBasicYaml);
  EXPECT_EQ(y.spec, j.spec);
  EXPECT_EQ(y.points, j.points);
  EXPECT_EQ(hashes(y), hashes(j));
  Grid y2 = load_ok("g.YML", kBasicYaml);
  EXPECT_EQ(hashes(y2), hashes(j));
}

TEST_F(GridTest, YamlTypesPlainScalarsByTheCoreSchema) {
  auto doc = yaml_to_json(R"(
a: 4096
b: "4096"
c: 4096.0
d: 1e3
e: true
f: "true"
g: yes
h: null
i: ~
j:
k: 0x10
l: 0o17
m: -7
n: 'single'
o: !!str 12
p: .5
q: 1.5.2
r: [1, two, 3.0]
s: {x: 1}
t: |
  block
)",
                          "t.yaml");
  ASSERT_TRUE(doc.ok()) << doc.message();
  const OJson& d = *doc;
  EXPECT_TRUE(d["a"].is_number_integer());
  EXPECT_EQ(d["a"], 4096);
  EXPECT_EQ(d["b"], "4096");
  EXPECT_TRUE(d["c"].is_number_float());
  EXPECT_EQ(d["c"], 4096.0);
  EXPECT_EQ(d["d"], 1000.0);
  EXPECT_EQ(d["e"], true);
  EXPECT_EQ(d["f"], "true");
  EXPECT_EQ(d["g"], "yes");  // YAML 1.1 booleans are strings in 1.2
  EXPECT_TRUE(d["h"].is_null());
  EXPECT_TRUE(d["i"].is_null());
  EXPECT_TRUE(d["j"].is_null());
  EXPECT_EQ(d["k"], 16);
  EXPECT_EQ(d["l"], 15);
  EXPECT_EQ(d["m"], -7);
  EXPECT_EQ(d["n"], "single");
  EXPECT_EQ(d["o"], "12");
  EXPECT_EQ(d["p"], 0.5);
  EXPECT_EQ(d["q"], "1.5.2");
  EXPECT_EQ(d["r"], OJson::parse(R"([1, "two", 3.0])"));
  EXPECT_EQ(d["s"], OJson::parse(R"({"x": 1})"));
  EXPECT_EQ(d["t"], "block\n");
  std::vector<std::string> keys;
  for (auto it = d.begin(); it != d.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys.front(), "a");
  EXPECT_EQ(keys.back(), "t");
}

TEST_F(GridTest, YamlEmptyIsNullAndTwoDocumentsAreAnError) {
  auto empty = yaml_to_json("# nothing\n", "e.yaml");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->is_null());
  auto two = yaml_to_json("a: 1\n---\nb: 2\n", "two.yaml");
  ASSERT_FALSE(two.ok());
  EXPECT_THAT(two.message(), StartsWith("two.yaml: "));
  EXPECT_THAT(two.message(), HasSubstr("line 2 column 1: expected one YAML document, found more"));
}

TEST_F(GridTest, YamlErrors) {
  std::string msg = load_err("dup.yaml", "name: x\naxes:\n  model: [qwen1.5-7b]\n  model: [qwen1.5-0.5b]\n");
  EXPECT_EQ(lines(msg, "dup.yaml"),
            (std::vector<std::string>{"$.axes.model: duplicate key; first given at line 3 column 3 (line 4 column 3)"}));

  msg = load_err("syn.yaml", "name: x\naxes: [a, b\nmeasure: [roofline]\n");
  ASSERT_EQ(lines(msg, "syn.yaml").size(), 1u);
  EXPECT_THAT(lines(msg, "syn.yaml")[0], ::testing::MatchesRegex("line [0-9]+ column [0-9]+: .+"));

  msg = load_err("inf.yaml", "name: x\nfixed:\n  bits: .inf\n");
  EXPECT_EQ(lines(msg, "inf.yaml"),
            (std::vector<std::string>{
                "$.fixed.bits: '.inf' cannot be written in JSON; expected a finite number (line 3 column 9)"}));

  msg = load_err("key.yaml", "name: x\n[a, b]: 1\n");
  EXPECT_EQ(lines(msg, "key.yaml"), (std::vector<std::string>{"$: mapping keys must be strings (line 2 column 1)"}));

  // A quoted number is a string, which the context parameter rejects.
  msg = load_err("q.yaml", std::string(kBasicYaml) + "repeats: \"2\"\n");
  EXPECT_EQ(lines(msg, "q.yaml"),
            (std::vector<std::string>{"$.repeats: expected an integer from 1 to 1000, got the string \"2\""}));
}

// ---------------------------------------------------------------- errors

TEST_F(GridTest, MissingFile) {
  auto g = load_grid(path("nope.json"));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.message(), path("nope.json") + ": cannot read: No such file or directory");
  auto d = load_grid(dir_.string());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.message(), dir_.string() + ": cannot read: is a directory");
}

TEST_F(GridTest, JsonSyntaxErrorGivesLineAndColumn) {
  std::string msg = load_err("s.json", "{\n  \"name\": \"x\",\n  }\n");
  EXPECT_EQ(lines(msg, "s.json"),
            (std::vector<std::string>{
                "line 3 column 3: syntax error while parsing object key - unexpected '}'; expected string literal"}));
  msg = load_err("e.json", "");
  EXPECT_THAT(lines(msg, "e.json")[0], StartsWith("line 1 column 1: syntax error"));
  msg = load_err("t.json", "{\"name\": \"x\",\n \"axes\": {\"model\": [\"a\",]}}");
  EXPECT_THAT(lines(msg, "t.json")[0], StartsWith("line 2 column 25: syntax error while parsing value - unexpected ']'"));
}

TEST_F(GridTest, JsonDuplicateKeysAreErrors) {
  std::string msg = load_err("d.json", R"({"name": "x", "axes": {"model": ["a"], "model": ["b"]},
    "measure": ["roofline"], "report": [{"title": "a"}, {"title": "b", "title": "c"}], "name": "y"})");
  EXPECT_EQ(lines(msg, "d.json"), (std::vector<std::string>{"$.axes.model: duplicate key",
                                                            "$.report[1].title: duplicate key", "$.name: duplicate key"}));
}

TEST_F(GridTest, TopLevelShapeAndUnknownKeys) {
  std::string msg = load_err("a.json", "[1, 2]");
  ASSERT_EQ(lines(msg, "a.json").size(), 1u);
  EXPECT_EQ(lines(msg, "a.json")[0],
            "$: expected an object with keys name, description, axes, fixed, include, exclude, measure, repeats, "
            "report, inputs, got an array");

  std::string text = kBasic;
  text.replace(text.find("\"measure\""), 0, "\"axis\": {}, \"Name\": 1,\n");
  msg = load_err("u.json", text);
  const std::string keys = "name, description, axes, fixed, include, exclude, measure, repeats, report, inputs";
  EXPECT_EQ(lines(msg, "u.json"), (std::vector<std::string>{"$.axis: unknown key (expected one of: " + keys + ")",
                                                            "$.Name: unknown key (expected one of: " + keys + ")"}));
}

TEST_F(GridTest, MissingRequiredKeys) {
  std::string msg = load_err("m.json", "{}");
  EXPECT_EQ(lines(msg, "m.json"),
            (std::vector<std::string>{
                "$: missing required key 'name' (a string of letters, digits, '.', '_' and '-', not only dots)",
                "$: missing required key 'axes' (an object of job parameters to arrays of values; or give 'include')",
                "$: missing required key 'measure' (an array of job kinds: " + known_kinds() + ")"}));
}

TEST_F(GridTest, WrongTypes) {
  std::string msg = load_err("t.json", R"({
    "name": "bad name",
    "description": 3,
    "axes": {"model": "qwen1.5-7b", "weight_format": []},
    "fixed": {"kv_format": "f16", "device": "rtx4090"},
    "repeats": 0,
    "measure": "roofline"
  })");
  EXPECT_EQ(lines(msg, "t.json"),
            (std::vector<std::string>{
                "$.name: expected a string of letters, digits, '.', '_' and '-', not only dots, got the string \"bad name\"",
                "$.description: expected a string, got the integer 3",
                "$.axes.model: expected a non-empty array of values, got the string \"qwen1.5-7b\"",
                "$.axes.weight_format: expected a non-empty array of values, got an empty array",
                "$.measure: expected a non-empty array of job kinds (known: " + known_kinds() +
                    "), got the string \"roofline\"",
                "$.repeats: expected an integer from 1 to 1000, got the integer 0"}));

  msg = load_err("t2.json", R"({"name": "x", "axes": {}, "fixed": [], "include": {}, "exclude": [{}],
                               "measure": [], "repeats": 1.5})");
  EXPECT_EQ(lines(msg, "t2.json"),
            (std::vector<std::string>{
                "$.axes: expected a non-empty object of job parameters to arrays of values, got an empty object",
                "$.fixed: expected an object of job parameters, got an empty array",
                "$.include: expected a non-empty array of points (objects of job parameters), got an empty object",
                "$.exclude[0]: expected a non-empty object of job parameters",
                "$.measure: expected a non-empty array of job kinds (known: " + known_kinds() +
                    "), got an empty array",
                "$.repeats: expected an integer from 1 to 1000, got the number 1.5"}));
}

TEST_F(GridTest, UnknownParametersAndKinds) {
  std::string msg = load_err("p.json", R"({
    "name": "x",
    "axes": {"modle": ["qwen1.5-7b"], "weight_format": ["f16"]},
    "fixed": {"kv_format": "f16", "device": "rtx4090", "colour": "red"},
    "include": [{"model": "qwen1.5-7b", "flavour": 1}],
    "measure": ["roofline", "rooflin", 3]
  })");
  const std::string kp = known_params();
  EXPECT_EQ(lines(msg, "p.json"),
            (std::vector<std::string>{
                "$.axes.modle: unknown job parameter 'modle' (known: " + kp + ")",
                "$.fixed.colour: unknown job parameter 'colour' (known: " + kp + ")",
                "$.include[0].flavour: unknown job parameter 'flavour' (known: " + kp + ")",
                "$.measure[1]: unknown job kind 'rooflin' (known: " + known_kinds() + ")",
                "$.measure[2]: expected a job kind name (known: " + known_kinds() + ") or {\"kind\": NAME, PARAM: VALUE, ...}, got the integer 3"}));
}

TEST_F(GridTest, BadValuesAreReportedAtTheirPath) {
  std::string msg = load_err("grid.json", R"({
    "name": "x",
    "axes": {
      "model": ["qwen1.5-7b", "qwen9-1t"],
      "weight_format": ["f16", "int8-channel", "int9"]
    },
    "fixed": {"kv_format": "f17", "device": "rtx4090"},
    "include": [{"model": "qwen1.5-7b", "weight_format": "f16", "kv_format": "f16", "batch_size": 0}],
    "exclude": [{"weight_format": "nf3"}],
    "measure": ["roofline"]
  })");
  auto want = [](const std::string& path, const std::string& name, const Json& v) {
    auto e = engine::check_param(name, v);
    EXPECT_TRUE(e.has_value()) << name << " " << v.dump();
    return path + ": " + e.value_or("");
  };
  std::vector<std::string> got = lines(msg, "grid.json");
  std::vector<std::string> expected = {
      want("$.axes.model[1]", "model", "qwen9-1t"),
      want("$.axes.weight_format[2]", "weight_format", "int9"),
      want("$.fixed.kv_format", "kv_format", "f17"),
      want("$.include[0].batch_size", "batch_size", 0),
      want("$.exclude[0].weight_format", "weight_format", "nf3"),
      "$.exclude[0]: matches no point of the axes' cross product"};
  EXPECT_EQ(got, expected);
  EXPECT_THAT(got[1], StartsWith("$.axes.weight_format[2]: "));
  EXPECT_THAT(got[1], HasSubstr("int9"));
}

TEST_F(GridTest, ExcludeMustMatchAPoint) {
  std::string msg = load_err("x.json", R"({
    "name": "x",
    "axes": {"model": ["qwen1.5-7b"], "weight_format": ["f16", "int8-channel"]},
    "fixed": {"kv_format": "f16", "device": "rtx4090"},
    "exclude": [{"weight_format": "int8-channel"}, {"weight_format": "int4-g128"},
                {"weight_format": "f16", "batch_size": 2}],
    "measure": ["roofline"]
  })");
  EXPECT_EQ(lines(msg, "x.json"), (std::vector<std::string>{"$.exclude[1]: matches no point of the axes' cross product",
                                                            "$.exclude[2]: matches no point of the axes' cross product"}));

  msg = load_err("all.json", R"({
    "name": "x",
    "axes": {"model": ["qwen1.5-7b"], "weight_format": ["f16"]},
    "fixed": {"kv_format": "f16", "device": "rtx4090"},
    "exclude": [{"model": "qwen1.5-7b"}],
    "measure": ["roofline"]
  })");
  EXPECT_EQ(lines(msg, "all.json"),
            (std::vector<std::string>{"$.exclude: excludes every point of the axes' cross product; the grid has no jobs"}));

  // An exclude on a fixed key matches when the values agree (numbers by value).
  Grid g = load_ok("ok.json", R"({
    "name": "x",
    "axes": {"model": ["qwen1.5-7b", "qwen1.5-0.5b"]},
    "fixed": {"weight_format": "f16", "kv_format": "f16", "device": "rtx4090", "context": 4096},
    "exclude": [{"model": "qwen1.5-0.5b", "context": 4096.0}],
    "measure": ["roofline"]
  })");
  EXPECT_EQ(g.points.size(), 1u);
}

TEST_F(GridTest, DuplicatePoints) {
  std::string msg = load_err("d.json", R"({
    "name": "x",
    "axes": {"model": ["qwen1.5-7b"], "weight_format": ["f16"], "context": [4096, 8192, 4096.0]},
    "fixed": {"kv_format": "f16", "device": "rtx4090"},
    "include": [
      {"model": "qwen1.5-7b", "weight_format": "f16", "context": 8192},
      {"model": "qwen1.5-7b", "weight_format": "f32", "context": 8192},
      {"context": 8192, "weight_format": "f32", "model": "qwen1.5-7b"}
    ],
    "measure": ["roofline"]
  })");
  EXPECT_EQ(lines(msg, "d.json"),
            (std::vector<std::string>{
                "$.axes.context[2]: duplicate value 4096 (same as $.axes.context[0])",
                "$.include[0]: duplicate point: the same as point 1 of the axes' cross product "
                "{\"context\":8192,\"device\":\"rtx4090\",\"kv_format\":\"f16\",\"model\":\"qwen1.5-7b\","
                "\"weight_format\":\"f16\"}",
                "$.include[2]: duplicate point: the same as $.include[1] "
                "{\"context\":8192,\"device\":\"rtx4090\",\"kv_format\":\"f16\",\"model\":\"qwen1.5-7b\","
                "\"weight_format\":\"f32\"}"}));
}

TEST_F(GridTest, AxisAndFixedBoth) {
  std::string msg = load_err("b.json", R"({
    "name": "x",
    "axes": {"model": ["qwen1.5-7b"], "weight_format": ["f16"]},
    "fixed": {"kv_format": "f16", "device": "rtx4090", "model": "qwen1.5-0.5b"},
    "measure": ["roofline"]
  })");
  EXPECT_EQ(lines(msg, "b.json"),
            (std::vector<std::string>{"$.fixed.model: 'model' is both an axis and fixed; give it in one place"}));
}

TEST_F(GridTest, MissingRequiredParameterIsReportedAtTheMeasure) {
  std::string msg = load_err("r.json", R"({
    "name": "x",
    "axes": {"model": ["qwen1.5-7b"], "weight_format": ["f16"], "kv_format": ["f16"]},
    "measure": ["roofline"]
  })");
  EXPECT_EQ(lines(msg, "r.json"),
            (std::vector<std::string>{"$.measure[0]: job kind 'roofline' needs parameter 'device'; give it in axes or fixed"}));

  msg = load_err("r2.json", R"({
    "name": "x",
    "axes": {"model": ["qwen1.5-7b"], "weight_format": ["f16"], "kv_format": ["f16"], "device": ["rtx4090"]},
    "include": [{"model": "qwen1.5-0.5b", "weight_format": "f16"}, {"model": "qwen1.5-0.5b", "weight_format": "f32"}],
    "measure": ["roofline"]
  })");
  EXPECT_EQ(lines(msg, "r2.json"),
            (std::vector<std::string>{
                "$.measure[0]: job kind 'roofline' needs parameter 'kv_format', missing in $.include[0], $.include[1]",
                "$.measure[0]: job kind 'roofline' needs parameter 'device', missing in $.include[0], $.include[1]"}));
}

TEST_F(GridTest, DuplicateMeasure) {
  std::string text = kBasic;
  text.replace(text.find("[\"roofline\"]"), std::string("[\"roofline\"]").size(), "[\"roofline\", \"roofline\"]");
  std::string msg = load_err("m.json", text);
  EXPECT_EQ(lines(msg, "m.json"), (std::vector<std::string>{"$.measure[1]: duplicate job kind 'roofline'"}));
}

TEST_F(GridTest, ErrorsAreCappedAtFifty) {
  OJson doc = OJson::parse(kBasic);
  for (int i = 0; i < 60; ++i) doc["x" + std::to_string(100 + i)] = i;
  auto g = parse_grid(doc, "many.json");
  ASSERT_FALSE(g.ok());
  std::string msg = g.message();
  size_t n = std::count(msg.begin(), msg.end(), '\n') + 1;
  EXPECT_EQ(n, 51u);
  EXPECT_THAT(msg, StartsWith("many.json: $.x100: unknown key (expected one of: "));
  EXPECT_THAT(msg, ::testing::EndsWith("\nmany.json: 10 more errors not shown"));
}

TEST_F(GridTest, PathsQuoteKeysThatAreNotIdentifiers) {
  EXPECT_EQ(json_path_key("$", "axes"), "$.axes");
  EXPECT_EQ(json_path_key("$.axes", "weight_format"), "$.axes.weight_format");
  EXPECT_EQ(json_path_key("$", "my key"), "$[\"my key\"]");
  EXPECT_EQ(json_path_key("$", "1x"), "$[\"1x\"]");
  EXPECT_EQ(json_path_index("$.measure", 3), "$.measure[3]");
  std::string msg = load_err("k.json", R"({"name": "x", "my key": 1, "axes": {"model": ["qwen1.5-7b"]},
                                          "measure": ["roofline"], "fixed": {"weight_format": "f16", "kv_format": "f16", "device": "rtx4090"}})");
  EXPECT_EQ(lines(msg, "k.json")[0].substr(0, 28), "$[\"my key\"]: unknown key (ex");
}

// ---------------------------------------------------------------- reports

TEST_F(GridTest, ReportSpecs) {
  std::string text = kBasic;
  text.replace(text.rfind('}'), 1, R"(,
  "report": [
    {"title": "T", "kind": "roofline", "rows": ["model"], "pivot": "weight_format",
     "columns": ["decode_B_ms",
                 {"metric": "max_context", "label": "ctx", "digits": 0, "scale": 1024, "suffix": "K", "truncate": true}],
     "filter": {"device": "rtx4090"}, "baseline": {"weight_format": "f16"}},
    {"rows": ["model", "weight_format"], "columns": ["decode_B_ms"]}
  ]
})");
  Grid g = load_ok("r.json", text);
  ASSERT_EQ(g.reports.size(), 2u);
  const ReportSpec& r = g.reports[0];
  EXPECT_EQ(r.title, "T");
  EXPECT_EQ(r.kind, "roofline");
  EXPECT_EQ(r.rows, (std::vector<std::string>{"model"}));
  EXPECT_EQ(r.pivot, "weight_format");
  ASSERT_EQ(r.columns.size(), 2u);
  EXPECT_EQ(r.columns[0].metric, "decode_B_ms");
  EXPECT_EQ(r.columns[0].label, "decode_B_ms");
  EXPECT_EQ(r.columns[0].digits, -1);
  EXPECT_EQ(r.columns[0].scale, 1);
  EXPECT_FALSE(r.columns[0].truncate);
  EXPECT_EQ(r.columns[1].metric, "max_context");
  EXPECT_EQ(r.columns[1].label, "ctx");
  EXPECT_EQ(r.columns[1].digits, 0);
  EXPECT_EQ(r.columns[1].scale, 1024);
  EXPECT_EQ(r.columns[1].suffix, "K");
  EXPECT_TRUE(r.columns[1].truncate);
  EXPECT_EQ(r.filter, Json({{"device", "rtx4090"}}));
  EXPECT_EQ(r.baseline, Json({{"weight_format", "f16"}}));
  EXPECT_EQ(g.reports[1].kind, "");
  EXPECT_TRUE(g.reports[1].baseline.is_null());
  EXPECT_EQ(g.reports[1].filter, Json::object());

  // A single object is one report.
  std::string one = kBasic;
  one.replace(one.rfind('}'), 1, R"(, "report": {"rows": ["model", "weight_format"], "columns": ["decode_B_ms"]}})");
  EXPECT_EQ(load_ok("one.json", one).reports.size(), 1u);
}

TEST_F(GridTest, ReportErrors) {
  std::string text = kBasic;
  text.replace(text.rfind('}'), 1, R"(,
  "report": {"title": 1, "kind": "speedo", "rows": ["model", "modle", 2], "pivot": "model",
             "columns": ["", {"label": "x", "digits": -1, "scale": 0, "suffix": 1, "truncate": "yes", "spread": "iqr", "color": "red"}, 7],
             "filter": {"device": "tpu9"}, "baseline": {}, "sort": "model"}
})");
  std::string msg = load_err("r.json", text);
  EXPECT_EQ(lines(msg, "r.json"),
            (std::vector<std::string>{
                "$.report.sort: unknown key (expected one of: title, kind, rows, pivot, columns, filter, baseline, "
                "plots, average_over)",
                "$.report.title: expected a string, got the integer 1",
                "$.report.kind: unknown job kind 'speedo' (known: " + known_kinds() + ")",
                "$.report.rows[1]: unknown job parameter 'modle' (known: " + known_params() + ")",
                "$.report.rows[2]: expected a job parameter name, got the integer 2",
                "$.report.pivot: 'model' is also one of the rows; expected another parameter",
                "$.report.columns[0]: expected a non-empty metric name",
                "$.report.columns[1].color: unknown key (expected one of: metric, label, digits, scale, suffix, "
                "truncate, spread, filter, minus, over, vs)",
                "$.report.columns[1]: missing required key 'metric' (a metric or parameter name)",
                "$.report.columns[1].digits: expected an integer from 0 to 17, got the integer -1",
                "$.report.columns[1].scale: expected a number > 0, got the integer 0",
                "$.report.columns[1].suffix: expected a string, got the integer 1",
                "$.report.columns[1].truncate: expected true or false, got the string \"yes\"",
                "$.report.columns[1].spread: expected \"sd\" or \"range\", got the string \"iqr\"",
                "$.report.columns[2]: expected a metric name or a column object {metric, label, digits, scale, "
                "suffix, truncate, spread, filter, minus, over, vs}, got the integer 7",
                "$.report.filter.device: " + engine::check_param("device", "tpu9").value_or("?"),
                "$.report.baseline: expected a non-empty object of job parameters"}));
}

// A report whose rows and pivot leave out an axis that varies would average jobs
// of different parameters in one cell (issue 15: with rows [weight_format], the
// int8-channel cell was the mean of two models): an error naming the axis, unless
// the report asks for that average explicitly.
TEST_F(GridTest, ReportCellsNeverMixJobs) {
  auto with_report = [](const std::string& report) {
    std::string text = kBasic;
    text.replace(text.rfind('}'), 1, ", \"report\": " + report + "}");
    return text;
  };
  std::string msg = load_err("mix.json", with_report(R"({"rows": ["weight_format"], "columns": ["decode_B_ms"],
                                                         "baseline": {"weight_format": "f16"}})"));
  EXPECT_EQ(lines(msg, "mix.json"),
            (std::vector<std::string>{
                "$.report: cells would average jobs that differ in 'model' (qwen1.5-0.5b, qwen1.5-7b); a cell "
                "averages the repeats of one job only: add 'model' to rows, make it the pivot, filter on one value, "
                "or list it in average_over"}));
  // Each way out is accepted.
  load_ok("rows.json", with_report(R"({"rows": ["weight_format", "model"], "columns": ["decode_B_ms"]})"));
  load_ok("pivot.json", with_report(R"({"rows": ["weight_format"], "pivot": "model", "columns": ["decode_B_ms"]})"));
  load_ok("filter.json",
          with_report(R"({"rows": ["weight_format"], "filter": {"model": "qwen1.5-7b"}, "columns": ["decode_B_ms"]})"));
  Grid avg = load_ok("avg.json", with_report(R"({"rows": ["weight_format"], "average_over": ["model"],
                                                 "columns": ["decode_B_ms"]})"));
  EXPECT_EQ(avg.reports[0].average_over, (std::vector<std::string>{"model"}));
  // A parameter that is fixed does not vary; repeats of one job are what cells average.
  std::string repeats = R"({"name": "r", "axes": {"seconds": [0.1, 0.2]}, "repeats": 3, "measure": ["sleep"],
                            "report": {"rows": ["seconds"], "columns": ["slept_s"]}})";
  EXPECT_EQ(load_ok("rep.json", repeats).jobs.size(), 6u);
  // A report without rows over a varying axis, and two kinds reporting one metric.
  std::string kinds = R"({"name": "k", "axes": {"kv_format": ["f16", "f32"]},
    "fixed": {"model": "synthetic:gpt2", "weight_format": "f16", "device": "rtx4090"},
    "measure": ["roofline", "memory"], "report": {"rows": ["kv_format"], "columns": ["kv_bytes_per_token"]}})";
  EXPECT_EQ(lines(load_err("kinds.json", kinds), "kinds.json"),
            (std::vector<std::string>{"$.report: cells would mix job kinds roofline and memory (both report "
                                      "'kv_bytes_per_token'): give the report a `kind`"}));
  std::string average_errors = with_report(R"({"rows": ["model"], "average_over": ["model", "modle"],
                                               "columns": ["decode_B_ms"]})");
  EXPECT_EQ(lines(load_err("ae.json", average_errors), "ae.json"),
            (std::vector<std::string>{"$.report.average_over[0]: 'model' is a row or the pivot; expected another "
                                      "parameter",
                                      "$.report.average_over[1]: unknown job parameter 'modle' (known: " +
                                          known_params() + ")"}));
}

// A column's own filter and a derived column's other values (issue 10: reference
// 001's two ppl columns, 002's diff): checked like a report's filter, and a cell may
// still hold one job only, counted per column.
TEST_F(GridTest, ColumnFiltersAndDerivedColumns) {
  auto with_report = [](const std::string& report) {
    std::string text = kBasic;
    text.replace(text.rfind('}'), 1, ", \"report\": " + report + "}");
    return text;
  };
  // Per column, the model axis is told apart by the filters: valid.
  Grid g = load_ok("ok.json", with_report(R"({"rows": ["weight_format"], "columns": [
      {"metric": "decode_B_ms", "label": "small", "filter": {"model": "qwen1.5-0.5b"}},
      {"metric": "decode_B_ms", "label": "big", "filter": {"model": "qwen1.5-7b"}},
      {"metric": "decode_B_ms", "label": "big - small", "filter": {"model": "qwen1.5-7b"},
       "minus": {"model": "qwen1.5-0.5b"}},
      {"metric": "decode_B_ms", "label": "vs f16", "filter": {"model": "qwen1.5-7b"}, "vs": {"weight_format": "f16"}}]})"));
  const ReportColumn& diff = g.reports[0].columns[2];
  EXPECT_EQ(diff.filter, (Json{{"model", "qwen1.5-7b"}}));
  EXPECT_EQ(diff.minus, (Json{{"model", "qwen1.5-0.5b"}}));
  EXPECT_EQ(g.reports[0].columns[3].against(), (Json{{"weight_format", "f16"}}));
  // Without the filters the cells would mix the models; a filter or an other value
  // that matches no job, two derived keys, a bad parameter: errors with their paths.
  EXPECT_EQ(lines(load_err("bad.json", with_report(R"({"rows": ["weight_format"], "columns": [
      {"metric": "decode_B_ms", "filter": {"model": "qwen1.5-7b"}},
      {"metric": "decode_B_ms"},
      {"metric": "decode_B_ms", "filter": {"model": "qwen1.5-14b"}},
      {"metric": "decode_B_ms", "filter": {"model": "qwen1.5-7b"}, "over": {"model": "qwen1.5-1.8b"}},
      {"metric": "decode_B_ms", "filter": {"modle": 1}, "minus": {"model": "gpt2"}, "vs": {"model": "gpt2"}}]})")),
                  "bad.json"),
            (std::vector<std::string>{
                "$.report.columns[4].filter.modle: unknown job parameter 'modle' (known: " + known_params() + ")",
                "$.report.columns[4]: expected at most one of 'minus', 'over' and 'vs'"}));
  EXPECT_EQ(lines(load_err("bad2.json", with_report(R"({"rows": ["weight_format"], "columns": [
      {"metric": "decode_B_ms", "filter": {"model": "qwen1.5-7b"}},
      {"metric": "decode_B_ms"},
      {"metric": "decode_B_ms", "filter": {"model": "qwen1.5-14b"}},
      {"metric": "decode_B_ms", "filter": {"model": "qwen1.5-7b"}, "over": {"model": "qwen1.5-1.8b"}}]})")),
                  "bad2.json"),
            (std::vector<std::string>{
                "$.report.columns[2].filter: matches no job of this report: the column would be empty",
                "$.report.columns[3].over: matches no job of this report: the column would be empty",
                "$.report: cells would average jobs that differ in 'model' (qwen1.5-0.5b, qwen1.5-7b); a cell "
                "averages the repeats of one job only: add 'model' to rows, make it the pivot, filter on one value, "
                "or list it in average_over"}));
}

// A column names a metric a kind of the report reports (or a parameter), a baseline
// values that some job has, a filter some job: else the table would silently be
// empty or without deltas (issue 15).
TEST_F(GridTest, ReportColumnsBaselinesAndFiltersMustMatchTheJobs) {
  std::string roofline_metrics;
  for (const auto& m : engine::find_job_kind("roofline")->metrics)
    roofline_metrics += (roofline_metrics.empty() ? "" : ", ") + m;
  std::string text = kBasic;
  text.replace(text.rfind('}'), 1, R"(, "report": [
    {"rows": ["model"], "pivot": "weight_format", "columns": ["decode_b_ms", {"metric": "tok_per_s"}, "context"],
     "baseline": {"weight_format": "q8_0"}},
    {"rows": ["model"], "pivot": "weight_format", "columns": ["decode_B_ms"],
     "baseline": {"device": "rtx4090", "model": "qwen1.5-14b"}},
    {"rows": ["model"], "pivot": "weight_format", "columns": ["decode_B_ms"], "filter": {"device": "h100-sxm"}}]})");
  EXPECT_EQ(lines(load_err("cols.json", text), "cols.json"),
            (std::vector<std::string>{
                "$.report[0].columns[0]: no job kind of this report reports metric 'decode_b_ms' (did you mean "
                "'decode_B_ms'?); known: roofline metrics: " + roofline_metrics + "; or the name of a job parameter",
                "$.report[0].columns[1].metric: no job kind of this report reports metric 'tok_per_s'; known: "
                "roofline metrics: " + roofline_metrics + "; or the name of a job parameter",
                "$.report[0].baseline.weight_format: q8_0 matches no job of this report (weight_format values: f16, "
                "int8-channel, int4-g128)",
                "$.report[1].baseline.device: 'device' is neither one of the rows (model) nor the pivot "
                "(weight_format)",
                "$.report[1].baseline.model: qwen1.5-14b matches no job of this report (model values: qwen1.5-0.5b, "
                "qwen1.5-7b)",
                "$.report[2].filter: matches no job of this report: its table would be empty"}));
}

// Names made only of dots would name directories other than the grid's own
// (out/.. is the current directory).
TEST_F(GridTest, GridNamesOfOnlyDotsAreInvalid) {
  for (const std::string name : {".", "..", "..."}) {
    std::string text = kBasic;
    text.replace(text.find("\"basic\""), 7, "\"" + name + "\"");
    EXPECT_EQ(lines(load_err("dots.json", text), "dots.json"),
              (std::vector<std::string>{"$.name: expected a string of letters, digits, '.', '_' and '-', not only "
                                        "dots, got the string \"" + name + "\""}))
        << name;
  }
  std::string text = kBasic;
  text.replace(text.find("\"basic\""), 7, "\"v1.5..b\"");
  EXPECT_EQ(load_ok("dotted.json", text).name, "v1.5..b");
}

// ---------------------------------------------------------------- shipped files

TEST(GridFiles, DemoGridLoads) {
  auto g = load_grid(std::string(GB_SOURCE_DIR) + "/experiments/demo.json");
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_EQ(g->points.size(), 24u);
  EXPECT_EQ(g->jobs.size(), 24u);
  ASSERT_EQ(g->reports.size(), 1u);
  const ReportSpec& r = g->reports[0];
  EXPECT_EQ(r.title, "Decode roofline");
  EXPECT_EQ(r.kind, "roofline");
  EXPECT_EQ(r.rows, (std::vector<std::string>{"model", "device"}));
  EXPECT_EQ(r.pivot, "weight_format");
  ASSERT_EQ(r.columns.size(), 3u);
  EXPECT_EQ(r.columns[0].label, "B ms");
  EXPECT_EQ(r.columns[2].metric, "max_context");
  EXPECT_TRUE(r.columns[2].truncate);
  EXPECT_EQ(r.baseline, Json({{"weight_format", "f16"}}));
  for (const auto& j : g->jobs) EXPECT_EQ(j.params["context"], 4096);
}

TEST(GridFiles, BadGridsAreRejectedWithTheirFileName) {
  fs::path dir = fs::path(GB_SOURCE_DIR) / "experiments" / "tests";
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind("bad-", 0) != 0) continue;
    ++n;
    auto g = load_grid(e.path().string());
    ASSERT_FALSE(g.ok()) << name;
    std::string msg = g.message();
    size_t start = 0;
    while (start < msg.size()) {
      size_t end = msg.find('\n', start);
      if (end == std::string::npos) end = msg.size();
      EXPECT_THAT(msg.substr(start, end - start), StartsWith(e.path().string() + ": ")) << name;
      start = end + 1;
    }
  }
  EXPECT_GE(n, 5);
}

}  // namespace
}  // namespace gb::coord

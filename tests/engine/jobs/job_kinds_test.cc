// The job-kind registry: parameter domains, job checks, projection, and the
// roofline job's output (metrics, units, text values, series, device).
#include <gtest/gtest.h>

#include <chrono>
#include <map>

#include "engine/jobs/job_kinds.h"
#include "engine/measure/measures.h"

namespace gb::engine {
namespace {

using nlohmann::json;

TEST(JobParams, RegistryIsComplete) {
  for (const char* name : {"model", "weight_format", "kv_format", "device", "batch_size", "context", "prompt_tokens",
                           "gen_tokens", "bits", "count_group_scales", "memory_model", "reserve_gib", "dataset",
                           "seed", "compute"}) {
    const ParamSpec* p = find_param(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_FALSE(p->help.empty()) << name;
  }
  EXPECT_EQ(find_param("nope"), nullptr);
  EXPECT_EQ(find_param("device")->type, ParamType::kStringOrObject);
}

TEST(JobParams, Domains) {
  const std::vector<std::pair<std::string, json>> good = {
      {"model", "qwen1.5-110b-nogqa"},
      {"model", "synthetic:gpt2@7"},
      {"weight_format", "fake:int8-g64"},
      {"kv_format", "int4+sink4+win256"},
      {"device", "h200"},
      {"device", {{"name", "x"}, {"memory_gib", 8}, {"bandwidth_gib_s", 100}, {"tflops", 10}}},
      {"batch_size", 1},
      {"batch_size", 48.0},
      {"context", 10000},
      {"prompt_tokens", 1},
      {"gen_tokens", 256},
      {"bits", 6},
      {"bits", 32},
      {"bits", 2.5},
      {"count_group_scales", false},
      {"memory_model", "003"},
      {"memory_model", "total"},
      {"reserve_gib", 0},
      {"reserve_gib", 1.5},
      {"dataset", "wikitext-2"},
      {"seed", 0},
      {"compute", "bf16"},
  };
  for (const auto& [name, value] : good) EXPECT_EQ(check_param(name, value), std::nullopt) << name << value;

  const std::vector<std::tuple<std::string, json, std::string>> bad = {
      {"model", "qwen9", "unknown model 'qwen9'"},
      {"model", 7, "expected a string"},
      {"model", "hf:/nonexistent/dir", "/nonexistent/dir/config.json"},
      {"weight_format", "int3", "unknown weight format 'int3'"},
      {"kv_format", "f16+win3", "bad KV cache policy"},
      {"device", "tpu", "unknown device 'tpu'"},
      {"device", json::array(), "expected a string or an object"},
      {"device", {{"name", "x"}}, "missing memory"},
      {"batch_size", 0, "expected an integer >= 1"},
      {"batch_size", 1.5, "expected an integer"},
      {"batch_size", "8", "expected an integer"},
      {"context", -3, ">= 1"},
      {"bits", 0, "(0, 32]"},
      {"bits", 33, "(0, 32]"},
      {"count_group_scales", "yes", "expected true or false"},
      {"memory_model", "all", "\"003\" or \"total\""},
      {"reserve_gib", -1, ">= 0"},
      {"seed", -1, ">= 0"},
      {"compute", "fp8", "\"f32\", \"f16\" or \"bf16\""},
      {"dataset", "", "dataset name"},
      {"colour", "red", "unknown parameter 'colour'"},
  };
  for (const auto& [name, value, needle] : bad) {
    auto problem = check_param(name, value);
    ASSERT_TRUE(problem.has_value()) << name << " " << value;
    EXPECT_NE(problem->find(needle), std::string::npos) << name << ": " << *problem;
  }
}

const json kRoofline7b = {
    {"model", "qwen1.5-7b"}, {"weight_format", "int8-channel"}, {"kv_format", "f16"}, {"device", "rtx4090"}};

TEST(JobKinds, CheckJobAndProject) {
  const JobKind* k = find_job_kind("roofline");
  ASSERT_NE(k, nullptr);
  EXPECT_TRUE(k->theory_only);
  EXPECT_EQ(find_job_kind("ppl-someday"), nullptr);

  EXPECT_TRUE(check_job("roofline", kRoofline7b).ok());
  Status unknown_kind = check_job("nope", kRoofline7b);
  ASSERT_FALSE(unknown_kind.ok());
  EXPECT_NE(unknown_kind.message().find("unknown job kind 'nope' (known: roofline"), std::string::npos);

  json missing = kRoofline7b;
  missing.erase("device");
  Status m = check_job("roofline", missing);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("'device'"), std::string::npos) << m.message();

  json bad = kRoofline7b;
  bad["batch_size"] = 0;
  Status b = check_job("roofline", bad);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.message().rfind("batch_size: ", 0), 0u) << b.message();

  json unknown = kRoofline7b;
  unknown["colour"] = 1;
  EXPECT_FALSE(check_job("roofline", unknown).ok());
  EXPECT_FALSE(check_job("roofline", json::array()).ok());

  // A grid point may carry parameters of other kinds: checked, then projected away.
  json point = kRoofline7b;
  point["dataset"] = "wikitext-2";
  point["context"] = 4096;
  EXPECT_TRUE(check_job("roofline", point).ok());
  json projected = project_params(*k, point);
  EXPECT_FALSE(projected.contains("dataset"));
  EXPECT_EQ(projected["context"], 4096);
  EXPECT_EQ(projected["model"], "qwen1.5-7b");
  EXPECT_EQ(projected.size(), 5u);
}

std::map<std::string, Metric> run_metrics(const json& params, JobOutput* out_copy = nullptr) {
  Result<JobOutput> out = run_roofline_job(params, nullptr);
  EXPECT_TRUE(out.ok()) << (out.ok() ? "" : out.message());
  std::map<std::string, Metric> m;
  if (!out.ok()) return m;
  for (const auto& metric : out->metrics) m[metric.name] = metric;
  if (out_copy) *out_copy = *out;
  return m;
}

TEST(RooflineJob, MetricsAndSeries) {
  json p = kRoofline7b;
  p["context"] = 20000;
  p["prompt_tokens"] = 512;
  double progress = -1;
  Result<JobOutput> out =
      run_roofline_job(p, [&](double f, const std::string&) { progress = f; });
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(progress, 1.0);
  std::map<std::string, Metric> m;
  for (const auto& metric : out->metrics) m[metric.name] = metric;

  for (const char* name : {"total_params", "activated_params", "decoder_params", "lm_head_params",
                           "embedding_params"})
    EXPECT_EQ(m[name].unit, "params") << name;
  EXPECT_EQ(*m["weight_bits"].value, 8);
  EXPECT_EQ(m["weight_bits"].unit, "bit");
  EXPECT_EQ(*m["kv_bits"].value, 16);
  EXPECT_EQ(*m["kv_elems_per_token"].value, 32 * 2 * 4096);
  EXPECT_EQ(*m["kv_bytes_per_token"].value, 32 * 2 * 4096 * 2);
  EXPECT_EQ(m["kv_bytes_per_token"].unit, "B");
  EXPECT_EQ(*m["weight_bytes"].value, *m["activated_params"].value);
  EXPECT_EQ(*m["max_context"].value, 35612);  // 003 sec. 5.1, 7B w8kv16
  EXPECT_EQ(m["max_context"].unit, "tokens");
  EXPECT_EQ(*m["prefill_rough_knee1"].value, 45);
  EXPECT_EQ(*m["prefill_exact_knee2"].value, 544);
  EXPECT_NEAR(*m["decode_B_ms"].value, 6.56, 0.005);
  EXPECT_EQ(m["decode_W_tokens_per_ms"].unit, "tokens/ms");
  EXPECT_NEAR(*m["decode_latency_ms"].value, 19999 / *m["decode_W_tokens_per_ms"].value + *m["decode_B_ms"].value,
              1e-9);
  ASSERT_TRUE(m.count("prefill_rough_ms") && m.count("prefill_exact_ms"));
  EXPECT_GT(*m["prefill_rough_ms"].value, *m["prefill_exact_ms"].value);  // lm_head 512 times vs once

  ASSERT_EQ(out->series.size(), 1u);
  const Series& s = out->series[0];
  EXPECT_EQ(s.name, "decode_latency");
  EXPECT_EQ(s.x_unit, "tokens");
  EXPECT_EQ(s.y_unit, "ms");
  // The line's ends (no streaming knee here): every point between lies on it.
  ASSERT_EQ(s.points.size(), 2u);
  EXPECT_EQ(s.points.front().x, 1);
  EXPECT_EQ(s.points.back().x, 20000);
  EXPECT_NEAR(s.points.front().y, *m["decode_B_ms"].value, 1e-12);
  EXPECT_NEAR(s.points.back().y, *m["decode_latency_ms"].value, 1e-12);

  EXPECT_EQ(out->device["name"], "rtx4090");
  EXPECT_DOUBLE_EQ(out->device["memory_bytes"].get<double>(), 24.0 * (1 << 30));
}

TEST(RooflineJob, TextValues) {
  json p = kRoofline7b;
  p["model"] = "qwen1.5-72b";
  auto m = run_metrics(p);
  EXPECT_FALSE(m["max_context"].value.has_value());
  EXPECT_EQ(m["max_context"].text, "oom");
  EXPECT_FALSE(m.count("decode_latency_ms"));
  EXPECT_FALSE(m.count("prefill_rough_ms"));

  p["model"] = "qwen1.5-0.5b";
  p["weight_format"] = "f16";
  m = run_metrics(p);
  EXPECT_EQ(m["prefill_rough_knee1"].text, "none");  // 003 sec. 4.3: 0.5B w16kv16 无 \ 无
  EXPECT_EQ(m["prefill_exact_knee2"].text, "none");
  EXPECT_FALSE(m["prefill_exact_knee2"].value.has_value());

  p["kv_format"] = "f16+sink4+win256";
  JobOutput out;
  m = run_metrics(p, &out);
  EXPECT_EQ(m["max_context"].text, "unbounded");
  EXPECT_EQ(*m["kv_capacity_tokens"].value, 260);
  // The curve's knee at the cache's capacity, flat after it.
  ASSERT_EQ(out.series.size(), 1u);
  const std::vector<SeriesPoint>& pts = out.series[0].points;
  ASSERT_EQ(pts.size(), 3u);
  EXPECT_EQ(pts[0].x, 1);
  EXPECT_EQ(pts[1].x, 260);
  EXPECT_EQ(pts[2].x, 10000);
  EXPECT_GT(pts[1].y, pts[0].y);
  EXPECT_EQ(pts[2].y, pts[1].y);
}

TEST(RooflineJob, GridStyleBitsAxis) {
  // The experiment grid sets bits with weight_format f16; w6 is 003's w6kv16 column.
  json p = {{"model", "qwen1.5-32b"}, {"weight_format", "f16"}, {"kv_format", "f16"}, {"device", "rtx4090"},
            {"bits", 6}};
  ASSERT_TRUE(check_job("roofline", p).ok());
  auto m = run_metrics(p);
  EXPECT_EQ(*m["weight_bits"].value, 6);
  EXPECT_EQ(*m["max_context"].value, 7515);  // 003 sec. 5.2.3
}

}  // namespace
}  // namespace gb::engine

namespace gb::engine {
namespace {

TEST(SleepKind, SleepsAndReportsTheTime) {
  const JobKind* k = find_job_kind("sleep");
  ASSERT_NE(k, nullptr);
  EXPECT_FALSE(k->theory_only);
  int calls = 0;
  auto t0 = std::chrono::steady_clock::now();
  Result<JobOutput> out = run_sleep_job(Json{{"seconds", 0.25}}, [&](double f, const std::string&) {
    EXPECT_GE(f, 0.0);
    EXPECT_LE(f, 1.0);
    ++calls;
  });
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(out.ok()) << out.message();
  ASSERT_EQ(out->metrics.size(), 1u);
  EXPECT_EQ(out->metrics[0].name, "slept_s");
  EXPECT_GE(*out->metrics[0].value, 0.25);
  EXPECT_LE(*out->metrics[0].value, wall + 1e-6);
  EXPECT_GE(calls, 2);
}

TEST(SleepKind, ChecksSeconds) {
  EXPECT_TRUE(check_job("sleep", Json{{"seconds", 1}}).ok());
  EXPECT_FALSE(check_job("sleep", Json::object()).ok());
  EXPECT_TRUE(check_param("seconds", Json(-1)).has_value());
  EXPECT_TRUE(check_param("seconds", Json("1")).has_value());
  EXPECT_FALSE(check_param("seconds", Json(0)).has_value());
}

}  // namespace
}  // namespace gb::engine

namespace gb::engine {
namespace {

// Keyed metrics (mc_accuracy's per subject): NAME:KEY for a listed NAME, only where
// the kind says it has them.
TEST(JobKinds, KeyedMetricsOnlyForKindsThatHaveThem) {
  const JobKind* mc = find_job_kind("mc_accuracy");
  ASSERT_NE(mc, nullptr);
  EXPECT_TRUE(mc->keyed_metrics);
  EXPECT_TRUE(kind_reports(*mc, "acc_letter"));
  EXPECT_TRUE(kind_reports(*mc, "acc_letter:astronomy"));
  EXPECT_TRUE(kind_reports(*mc, "questions:kjv_continuation"));
  EXPECT_FALSE(kind_reports(*mc, "acc_nothing:astronomy"));
  EXPECT_FALSE(kind_reports(*mc, "acc_letter:"));
  EXPECT_FALSE(kind_reports(*mc, ":astronomy"));
  const JobKind* ppl = find_job_kind("ppl");
  ASSERT_NE(ppl, nullptr);
  EXPECT_FALSE(kind_reports(*ppl, "ppl:astronomy"));
}

TEST(JobParams, AccuracyParameterDomains) {
  for (const auto& [name, v] : std::vector<std::pair<std::string, Json>>{
           {"mc_mode", "all"}, {"mc_mode", "choice_text"}, {"mc_prompt", "continuation"}, {"mc_split", "val"},
           {"shots", 0}, {"shots", 5}, {"limit", 1}, {"subjects", "astronomy,virology"}, {"max_new_tokens", 8},
           {"answer_match", "number"}})
    EXPECT_FALSE(check_param(name, v).has_value()) << name << " " << v.dump() << ": " << *check_param(name, v);
  for (const auto& [name, v] : std::vector<std::pair<std::string, Json>>{
           {"mc_mode", "logits"}, {"mc_prompt", "chat"}, {"mc_split", "dev"}, {"shots", -1}, {"shots", 65},
           {"limit", 0}, {"subjects", ""}, {"subjects", "a,,b"}, {"subjects", "a,"}, {"max_new_tokens", 0},
           {"answer_match", "fuzzy"}})
    EXPECT_TRUE(check_param(name, v).has_value()) << name << " " << v.dump();
}

}  // namespace
}  // namespace gb::engine

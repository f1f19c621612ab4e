// The timing kinds beyond `speed` (decode_curve, context_search): their structure
// and arithmetic against independent computations (the fit recomputed from the
// stored series, the roofline's B and W worked by hand from the measured
// bandwidth), never their speed.
#include <gtest/gtest.h>

#include <bit>

#include <cmath>
#include <string>

#include "engine/jobs/job_kinds.h"
#include "engine/measure/measures.h"
#include "engine/measure/stats/decode_fit.h"

namespace gb::engine {
namespace {
namespace timing_kinds_test {

const std::string kData = std::string(GB_SOURCE_DIR) + "/tests/data";
// tests/data/golden/llama_gqa: 2 layers, 2 KV heads of 16 dims, f32 weights.
const std::string kLlama = "hf:" + kData + "/golden/llama_gqa";

const Metric* metric(const JobOutput& o, const std::string& name) {
  for (const Metric& m : o.metrics)
    if (m.name == name) return &m;
  return nullptr;
}
double value_of(const JobOutput& o, const std::string& name) {
  const Metric* m = metric(o, name);
  EXPECT_TRUE(m && m->value) << name;
  return m && m->value ? *m->value : NAN;
}
const Series* series(const JobOutput& o, const std::string& name) {
  for (const Series& s : o.series)
    if (s.name == name) return &s;
  return nullptr;
}

Result<JobOutput> run(const std::string& kind, const Json& params) {
  const MeasureFn* k = find_measure(kind);
  EXPECT_NE(k, nullptr);
  if (Status s = check_job(kind, params); !s.ok()) return s.error();
  return (*k)(params, nullptr);
}

void expect_declared(const std::string& kind, const JobOutput& out) {
  const JobKind* k = find_job_kind(kind);
  ASSERT_NE(k, nullptr);
  for (const Metric& m : out.metrics) EXPECT_TRUE(kind_reports(*k, m.name)) << kind << " reports undeclared " << m.name;
}

TEST(DecodeCurveJob, SeriesFitAndRooflineAtTheMeasuredBandwidth) {
  Result<JobOutput> out =
      run("decode_curve", {{"model", kLlama}, {"prompt_tokens", 2}, {"gen_tokens", 12}, {"batch_size", 2}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  expect_declared("decode_curve", *out);
  const Series* curve = series(*out, "decode_latency");
  ASSERT_NE(curve, nullptr);
  ASSERT_EQ(curve->points.size(), 12u);
  EXPECT_EQ(curve->points.front().x, 3);  // the first decode step attends prompt + 1 tokens
  EXPECT_EQ(curve->points.back().x, 14);
  EXPECT_EQ(value_of(*out, "steps"), 12);

  // The fit, recomputed from the stored points.
  const DecodeFit fit = fit_decode_latency(curve->points);
  EXPECT_DOUBLE_EQ(value_of(*out, "fit_B_ms"), fit.B_ms);
  EXPECT_DOUBLE_EQ(value_of(*out, "fit_r2"), fit.r2);
  const Metric* w = metric(*out, "fit_W_tokens_per_ms");
  ASSERT_NE(w, nullptr);
  if (fit.W_tokens_per_ms > 0)
    EXPECT_DOUBLE_EQ(w->value.value_or(NAN), fit.W_tokens_per_ms);
  else
    EXPECT_EQ(w->text, "none");  // the tiny model's KV cost can sink below the noise
  ASSERT_NE(series(*out, "decode_latency_fit"), nullptr);
  EXPECT_NEAR(series(*out, "decode_latency_fit")->points[5].y, (curve->points[5].x - 1) * fit.slope_ms_per_token + fit.B_ms,
              1e-12);

  // 003's B and W by hand at the measured bandwidth: f32 weights (4 bytes per
  // activated parameter: decoder + lm_head, embedding excluded), an f32 cache of
  // 2 x 2 layers x 2 heads x 16 = 128 elements, 512 bytes per token, 2 sequences.
  const double bw = value_of(*out, "measured_bandwidth_gb_s") * 1e9;
  ASSERT_GT(bw, 0);
  // llama_gqa: per layer q 64x64, k and v 32x64 each, o 64x64, gate/up/down 3 x 64x128
  // (003 counts no norms); lm_head 128x64.
  const double layer = 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 64 * 128;
  const double activated = 2 * layer + 128 * 64;
  EXPECT_NEAR(value_of(*out, "theory_B_ms"), activated * 4 / bw * 1000, 1e-9 * value_of(*out, "theory_B_ms"));
  EXPECT_NEAR(value_of(*out, "theory_W_tokens_per_ms"), bw * 1e-3 / (2 * 512.0),
              1e-9 * value_of(*out, "theory_W_tokens_per_ms"));
  if (fit.B_ms > 0)
    EXPECT_NEAR(value_of(*out, "B_theory_over_actual"), value_of(*out, "theory_B_ms") / fit.B_ms, 1e-9);
  else
    EXPECT_EQ(metric(*out, "B_theory_over_actual")->text, "none");
  const Series* roof = series(*out, "decode_latency_theory");
  ASSERT_NE(roof, nullptr);
  ASSERT_EQ(roof->points.size(), 12u);
  EXPECT_NEAR(roof->points[0].y,
              (3 - 1) / value_of(*out, "theory_W_tokens_per_ms") + value_of(*out, "theory_B_ms"), 1e-12);
  EXPECT_EQ(out->device["backend"], "cpu");
}

// context_search against the memory arithmetic: with a static cache every token of
// context costs exactly the KV bytes of a token per sequence (by hand: f32, 2 x 2
// layers x 2 heads x 16 = 512 bytes), so the longest context is the budget left
// after the fixed part (weights + one chunk's activations) over 512 bytes, and a
// budget 100 tokens' worth larger gives exactly 100 more.
constexpr double kKvBytes = 512;

Result<JobOutput> search(double budget_bytes, const std::string& allocation) {
  return run("context_search", {{"model", kLlama},
                                {"memory_budget_gib", budget_bytes / (1024.0 * 1024.0 * 1024.0)},
                                {"kv_allocation", allocation},
                                {"prefill_chunk", 64}});
}

TEST(ContextSearchJob, StaticAllocationMatchesTheMemoryArithmetic) {
  const double budget = 1 << 20;  // 1 MiB: the f32 weights take about 360 KB
  Result<JobOutput> out = search(budget, "static");
  ASSERT_TRUE(out.ok()) << out.error().message;
  expect_declared("context_search", *out);
  EXPECT_EQ(value_of(*out, "kv_bytes_per_token"), kKvBytes);
  EXPECT_EQ(value_of(*out, "search_limited"), 0);
  const double fixed = value_of(*out, "fixed_bytes");
  const double L = value_of(*out, "measured_max_context");
  EXPECT_EQ(L, std::floor((budget - fixed) / kKvBytes));
  EXPECT_EQ(value_of(*out, "peak_bytes_at_max"), fixed + L * kKvBytes);
  EXPECT_LE(value_of(*out, "peak_bytes_at_max"), budget);

  Result<JobOutput> more = search(budget + 100 * kKvBytes, "static");
  ASSERT_TRUE(more.ok()) << more.error().message;
  EXPECT_EQ(value_of(*more, "fixed_bytes"), fixed);
  EXPECT_EQ(value_of(*more, "measured_max_context"), L + 100);
}

// A dynamic cache doubles from 256 slots and holds the old buffer while it copies:
// reaching capacity C (> 256) takes C / 2 + C slots at once, so the longest context
// is the largest C = 256 x 2^j with fixed + 1.5 C x 512 <= budget (every context up
// to C then fits without growing).
TEST(ContextSearchJob, DynamicAllocationPaysForTheCopyWhileGrowing) {
  const double budget = 1 << 20;
  Result<JobOutput> out = search(budget, "dynamic");
  ASSERT_TRUE(out.ok()) << out.error().message;
  const double fixed = value_of(*out, "fixed_bytes");
  double expected = 0;
  if (fixed + 256 * kKvBytes <= budget) expected = 256;
  for (double cap = 512; fixed + 1.5 * cap * kKvBytes <= budget; cap *= 2) expected = cap;
  ASSERT_GT(expected, 256);
  EXPECT_EQ(value_of(*out, "measured_max_context"), expected);
  Result<JobOutput> st = search(budget, "static");
  ASSERT_TRUE(st.ok());
  EXPECT_LT(value_of(*out, "measured_max_context"), value_of(*st, "measured_max_context"));
}

// A paged cache grows a page (here 16 slots: 16 x 512 = 8 KiB) at a time and copies
// nothing, so it reaches the static cache's context less at most one page and its
// page table (8 bytes an entry, the old table live while a doubled one is filled),
// always in whole pages, and beyond the doubling cache's.
TEST(ContextSearchJob, PagedAllocationReachesTheStaticContextLessAPage) {
  const double budget = 1 << 20;
  Result<JobOutput> out = run("context_search", {{"model", kLlama},
                                                 {"memory_budget_gib", budget / (1024.0 * 1024.0 * 1024.0)},
                                                 {"kv_allocation", "paged"},
                                                 {"kv_page_tokens", 16},
                                                 {"prefill_chunk", 64}});
  ASSERT_TRUE(out.ok()) << out.error().message;
  const double fixed = value_of(*out, "fixed_bytes");
  const double L = value_of(*out, "measured_max_context");
  const double pages = L / 16;
  EXPECT_EQ(pages, std::floor(pages)) << L;
  const double table_slack = 3 * 8 * std::bit_ceil(static_cast<uint64_t>(pages) + 1);
  EXPECT_LE(fixed + L * kKvBytes, budget);
  EXPECT_GT(fixed + (L + 16) * kKvBytes + table_slack, budget);
  Result<JobOutput> st = search(budget, "static");
  Result<JobOutput> dyn = search(budget, "dynamic");
  ASSERT_TRUE(st.ok() && dyn.ok());
  EXPECT_GT(L, value_of(*dyn, "measured_max_context"));
  EXPECT_LE(L, value_of(*st, "measured_max_context"));
  EXPECT_GT(L + 16 + table_slack / kKvBytes, value_of(*st, "measured_max_context"));
  EXPECT_FALSE(check_job("context_search", {{"model", kLlama}, {"kv_page_tokens", 24}}).ok());
  Result<JobOutput> unpaged = run("context_search", {{"model", kLlama},
                                                     {"memory_budget_gib", budget / (1024.0 * 1024.0 * 1024.0)},
                                                     {"kv_allocation", "static"},
                                                     {"kv_page_tokens", 16}});
  ASSERT_FALSE(unpaged.ok());
  EXPECT_NE(unpaged.error().message.find("kv_page_tokens"), std::string::npos) << unpaged.error().message;
}

// A budget smaller than the weights: no context runs ("oom"); without a budget on
// the CPU the job says what it needs.
TEST(ContextSearchJob, TooSmallABudgetIsOomAndNoBudgetIsAnError) {
  Result<JobOutput> out = search(64 * 1024, "static");
  ASSERT_TRUE(out.ok()) << out.error().message;
  const Metric* m = metric(*out, "measured_max_context");
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->value.has_value());
  EXPECT_EQ(m->text, "oom");
  Result<JobOutput> none = run("context_search", {{"model", kLlama}});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("memory_budget_gib"), std::string::npos) << none.error().message;
  EXPECT_FALSE(check_job("context_search", {{"model", kLlama}, {"kv_allocation", "lazy"}}).ok());
  EXPECT_FALSE(check_job("context_search", {{"model", kLlama}, {"memory_budget_gib", 0}}).ok());
}

}  // namespace timing_kinds_test
}  // namespace
}  // namespace gb::engine

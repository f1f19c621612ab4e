// The quant_error kind (engine/measure/quant_error_job.cc): its figure equals an
// independent computation of per-tensor int8 written here, its inputs are the
// documented seeded N(0,1) matrices, fp8 errs about twice as much as int8 per
// tensor (reference 004's 4.4), finer scales err less, fake formats add bf16's
// rounding, a model's real weight matrix can be W, and bad parameters are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "engine/jobs/job_kinds.h"
#include "engine/measure/measures.h"
#include "engine/measure/quant_error.h"

namespace gb::engine {
namespace {
namespace quant_error_test {

const std::string kData = std::string(GB_SOURCE_DIR) + "/tests/data";

Result<JobOutput> run(const Json& params) {
  if (Status s = check_job("quant_error", params); !s.ok()) return s.error();
  return (*find_measure("quant_error"))(params, nullptr);
}

double metric(const Json& params, const std::string& name = "rel_error") {
  Result<JobOutput> out = run(params);
  EXPECT_TRUE(out.ok()) << out.error().message;
  if (!out.ok()) return NAN;
  for (const Metric& m : out->metrics)
    if (m.name == name && m.value) return *m.value;
  ADD_FAILURE() << "no " << name;
  return NAN;
}

// The documented inputs: std::mt19937_64(seed), std::normal_distribution<double>,
// rounded to f32; W [C, C] from `seed`, X [R, C] from seed + 1.
std::vector<float> normal(size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(d(g));
  return v;
}

TEST(QuantError, PerTensorInt8EqualsAnIndependentComputation) {
  const int64_t R = 8, C = 96;
  const uint64_t seed = 5;
  const std::vector<float> w = normal(C * C, seed), x = normal(R * C, seed + 1);
  // Per-tensor int8: s = absmax / 127, q = round-half-even(w / s) in [-127, 127].
  float absmax = 0;
  for (float v : w) absmax = std::max(absmax, std::fabs(v));
  const float s = absmax / 127.0f, inv = 1.0f / s;
  std::vector<double> wq(w.size());
  for (size_t i = 0; i < w.size(); ++i) wq[i] = double{s * std::clamp(std::nearbyint(w[i] * inv), -127.0f, 127.0f)};
  long double num = 0, den = 0;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t n = 0; n < C; ++n) {
      long double y = 0, yq = 0;
      for (int64_t c = 0; c < C; ++c) {
        y += static_cast<long double>(x[r * C + c]) * w[n * C + c];
        yq += static_cast<long double>(x[r * C + c]) * wq[n * C + c];
      }
      num += (yq - y) * (yq - y);
      den += y * y;
    }
  const double want = static_cast<double>(std::sqrt(num / den));
  const double got = metric({{"weight_format", "int8-tensor"}, {"shape", "8x96"}, {"seed", 5}, {"threads", 2}});
  EXPECT_NEAR(got, want, 1e-9 * want);
  EXPECT_GT(want, 0.003);  // a real error: about 1% for N(0,1) at this size
  EXPECT_LT(want, 0.03);
}

TEST(QuantError, OrderedAsTheFormatsScalesSuggest) {
  auto e = [](const std::string& f) { return metric({{"weight_format", f}, {"shape", "16x512"}}); };
  const double int8_t = e("int8-tensor"), fp8_t = e("fp8-tensor");
  // Reference 004 (4.4, 16x512): INT8 0.009608, FP8 0.022184, ratio 2.31.
  EXPECT_GT(fp8_t / int8_t, 1.5);
  EXPECT_LT(fp8_t / int8_t, 3.5);
  EXPECT_NEAR(int8_t, 0.0096, 0.003);
  EXPECT_NEAR(fp8_t, 0.022, 0.006);
  // int8: per row and per group scales err less than one per tensor; smaller groups less still.
  EXPECT_LT(e("int8-channel"), int8_t);
  EXPECT_LT(e("int8-g64"), e("int8-g512"));
  EXPECT_LT(e("int4-g32"), e("int4-g128"));
  // Fake quantization: the same codes, then bf16's rounding on top.
  const double fake = e("fake:int8-tensor");
  EXPECT_GT(fake, int8_t);
  EXPECT_LT(fake, 2 * int8_t);
  EXPECT_EQ(e("f32"), 0.0);
}

TEST(QuantError, OnAModelsWeightMatrix) {
  const Json p = {{"weight_format", "int8-channel"},
                  {"model", "hf:" + kData + "/golden/llama_gqa"},
                  {"tensor", "model.layers.0.mlp.down_proj.weight"}};
  const double e = metric(p);
  EXPECT_GT(e, 0);
  EXPECT_LT(e, 0.05);
  EXPECT_EQ(metric(p, "rel_error"), e);  // seeded: the same again
  Json rows = p;
  rows["shape"] = "4x128";  // down_proj: [64, 128]
  EXPECT_GT(metric(rows), 0);
  rows["shape"] = "4x64";
  Result<JobOutput> bad = run(rows);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("X must have the in features"), std::string::npos) << bad.error().message;
}

// The activation-quantized formats quantize X as well: on N(0,1) data W8A8 errs
// more than its weight-only twin (the activations' rounding adds to the weights'),
// fp8 more than int8, and int8-llm at a threshold below every |x| keeps X exact
// (every column an outlier): its figure is then the int8 weights' alone.
TEST(QuantError, ActivationFormatsQuantizeXToo) {
  auto e = [](const std::string& f, Json extra = Json::object()) {
    Json p = {{"weight_format", f}, {"shape", "16x512"}, {"threads", 2}};
    p.update(extra);
    return metric(p);
  };
  const double w_only = e("int8-channel"), w8a8 = e("w8a8-int8"), fp8 = e("w8a8-fp8");
  std::printf("quant_error 16x512: int8-channel %.5f, w8a8-int8 %.5f, w8a8-fp8 %.5f, w8a8-int8+smooth %.5f\n", w_only,
              w8a8, fp8, e("w8a8-int8+smooth"));
  EXPECT_GT(w8a8, 1.2 * w_only);
  EXPECT_GT(fp8, w8a8);
  EXPECT_NEAR(e("int8-llm", {{"llm_int8_threshold", 1e-6}}), w_only, 1e-9);
  EXPECT_GT(e("int8-llm"), w_only);  // N(0,1) at 16 rows: |x| >= 6 is rare, so mostly int8 activations
}

TEST(QuantError, BadParametersAreRefused) {
  EXPECT_NE(check_job("quant_error", {{"weight_format", "int8-tensor"}, {"shape", "16by512"}}).message().find(
                "shape: expected RxC"),
            std::string::npos);
  EXPECT_NE(check_job("quant_error", {{"shape", "16x512"}}).message().find("needs parameter 'weight_format'"),
            std::string::npos);
  Result<JobOutput> r = run({{"weight_format", "int8-g512"}, {"shape", "4x96"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("int8-g512"), std::string::npos) << r.error().message;
  r = run({{"weight_format", "int8-tensor"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("needs `shape`"), std::string::npos) << r.error().message;
  r = run({{"weight_format", "int8-tensor"}, {"tensor", "x"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("give the `model` too"), std::string::npos) << r.error().message;
  // A model without a tensor is not read (a 110B preset would take minutes): the seeded
  // W of `shape`, the same error.
  Result<JobOutput> seeded = run({{"weight_format", "int8-tensor"}, {"shape", "4x64"}});
  Result<JobOutput> named =
      run({{"weight_format", "int8-tensor"}, {"shape", "4x64"}, {"model", "synthetic:qwen1.5-110b"}});
  ASSERT_TRUE(seeded.ok()) << seeded.error().message;
  ASSERT_TRUE(named.ok()) << named.error().message;
  EXPECT_EQ(seeded->metrics[0].value, named->metrics[0].value);
  EXPECT_FALSE(parse_quant_shape("0x5").ok());
  EXPECT_FALSE(parse_quant_shape("5x").ok());
  EXPECT_EQ(parse_quant_shape("100x1024")->str(), "100x1024");
}

}  // namespace quant_error_test
}  // namespace
}  // namespace gb::engine

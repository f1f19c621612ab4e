// The engine's "can this run" rule (engine/spec/format_support.h): weight formats
// against the model's layer widths, activation quantization and compute dtypes
// against the backend, streaming KV caches against learned positions. That Model::load agrees with it is
// tests/engine/model/weight_formats_test.cc's; the grid's use, tests/coordinator/.
#include <gtest/gtest.h>

#include <string>

#include "engine/spec/format_support.h"

namespace gb::engine {
namespace {

// A model whose widths the cases pick: hidden 64 (4 heads of 16), MLP 96.
ModelConfig narrow() {
  ModelConfig c;
  c.name = "narrow";
  c.hidden_size = 64;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.intermediate_size = 96;
  c.num_layers = 2;
  c.vocab_size = 128;
  c.max_position_embeddings = 64;
  return c;
}

std::string problems(const ModelConfig& c, const std::string& weights, const std::string& kv = "",
                     const std::string& backend = "cpu") {
  Result<WeightFormat> w = parse_weight_format(weights.empty() ? "f32" : weights);
  Result<KvFormat> k = parse_kv_format(kv.empty() ? "f32" : kv);
  EXPECT_TRUE(w.ok() && k.ok()) << weights << " " << kv;
  std::string out;
  for (const FormatProblem& p : format_support_problems(c, weights.empty() ? nullptr : &*w, kv.empty() ? nullptr : &*k,
                                                        backend))
    out += (out.empty() ? "" : "\n") + p.param + ": " + p.what;
  return out;
}

TEST(FormatSupport, GroupsAndBlocksMustDivideEveryLayerWidth) {
  const ModelConfig c = narrow();
  EXPECT_EQ(problems(c, "int4-g32"), "");
  EXPECT_EQ(problems(c, "int8-g32"), "");
  EXPECT_EQ(problems(c, "q8_0"), "");
  // Only the MLP's down projection (96 wide) is refused in groups of 64; a width
  // that num_heads x head_dim shares with hidden_size is said once.
  EXPECT_EQ(problems(c, "int4-g64"),
            "weight_format: weight format 'int4-g64': intermediate_size 96 is not a multiple of its groups of 64");
  EXPECT_EQ(problems(c, "int4-g128"),
            "weight_format: weight format 'int4-g128': hidden_size 64 is not a multiple of its groups of 128\n"
            "weight_format: weight format 'int4-g128': intermediate_size 96 is not a multiple of its groups of 128");
  EXPECT_NE(problems(c, "q4_k").find("hidden_size 64 is not a multiple of its blocks of 256"), std::string::npos);
  // Fake quantization rounds through the same codes.
  EXPECT_NE(problems(c, "fake:nf4-b64").find("intermediate_size 96 is not a multiple of its groups of 64"),
            std::string::npos);
  // Per row, per tensor and 16-bit formats fit any width; so do the presets in all.
  for (const std::string f : {"f16", "bf16", "int8-channel", "int8-tensor", "fp8-channel"})
    EXPECT_EQ(problems(c, f), "") << f;
  const ModelConfig* qwen = find_model_preset("qwen1.5-7b");
  ASSERT_NE(qwen, nullptr);
  for (const std::string f : {"int4-g128", "nf4-b64-dq", "q4_k", "q6_k", "int8-g256"})
    EXPECT_EQ(problems(*qwen, f), "") << f;
}

TEST(FormatSupport, ActivationQuantizationRunsWhereTheOneRuleSays) {
  const ModelConfig c = narrow();
  for (const std::string backend : {"cpu", "cuda", "cuda:0"}) {
    const std::string kind = backend.substr(0, backend.find(':'));
    for (const std::string f : {"int8-llm", "w8a8-int8"}) {
      const std::string p = problems(c, f, "", backend);
      if (activation_quantization_runs_on(kind)) {
        EXPECT_EQ(p, "") << f << " on " << backend;
      } else {
        EXPECT_NE(p.find("weight_format: weight format '" + f + "' quantizes activations ("), std::string::npos) << p;
        EXPECT_NE(p.find("which the engine does not run on backend " + kind + " yet"), std::string::npos) << p;
      }
    }
  }
}

// A compute dtype other than f32 runs where its one rule says (the CPU backend), and
// not with a format that has an activation path of its own.
TEST(FormatSupport, ComputeDtypeRunsWhereTheOneRuleSaysAndNotWithActivationQuantization) {
  const ModelConfig c = narrow();
  Result<WeightFormat> fp4 = parse_weight_format("int8-channel");  // fits the narrow widths
  Result<WeightFormat> w8a8 = parse_weight_format("w8a8-int8");
  Result<WeightFormat> fake = parse_weight_format("fake:w8a8-int8");
  ASSERT_TRUE(fp4.ok() && w8a8.ok() && fake.ok());
  auto text = [&](const WeightFormat* w, const std::string& backend, ComputeDtype d) {
    std::string out;
    for (const FormatProblem& p : format_support_problems(c, w, nullptr, backend, d))
      out += (out.empty() ? "" : "\n") + p.param + ": " + p.what;
    return out;
  };
  EXPECT_TRUE(compute_dtype_runs_on("cpu"));
  EXPECT_FALSE(compute_dtype_runs_on("cuda"));
  for (ComputeDtype d : {ComputeDtype::kBf16, ComputeDtype::kF16}) {
    const std::string name = kernels::compute_dtype_name(d);
    EXPECT_EQ(text(&*fp4, "cpu", d), "") << name;
    EXPECT_EQ(text(nullptr, "cpu", d), "") << name;
    EXPECT_EQ(text(&*fake, "cpu", d), "") << name << ": fake quantization reads f32 activations";
    EXPECT_EQ(text(&*fp4, "cuda:0", d),
              "compute: compute dtype '" + name +
                  "' (inputs and weights of the linear layers rounded to it), which the engine does not run on "
                  "backend cuda yet");
    EXPECT_EQ(text(&*w8a8, "cpu", d), "compute: compute dtype '" + name +
                                          "' with weight format 'w8a8-int8', which quantizes its activations "
                                          "(int8): the two do not combine; leave compute out");
  }
  EXPECT_EQ(text(&*fp4, "cuda", ComputeDtype::kF32), "");
  EXPECT_EQ(text(&*w8a8, "cpu", ComputeDtype::kF32), "");
  Result<ComputeDtype> bad = parse_compute_dtype("fp8");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "unknown compute dtype 'fp8': expected \"f32\", \"f16\" or \"bf16\"");
  EXPECT_EQ(*parse_compute_dtype("bf16"), ComputeDtype::kBf16);
}

TEST(FormatSupport, AStreamingCacheMayNotOutgrowLearnedPositions) {
  ModelConfig gpt2 = narrow();
  gpt2.learned_positions = true;  // 64 positions
  EXPECT_EQ(problems(gpt2, "", "f16+sink4+win60"), "");
  EXPECT_EQ(problems(gpt2, "", "int8+sink4+win61"),
            "kv_format: KV format 'int8+sink4+win61': a streaming cache of 65 slots exceeds the model's 64 positions "
            "(it learns its positions: no more can be encoded)");
  // Rope positions have no table to outgrow; a full cache is bounded by the context.
  EXPECT_EQ(problems(narrow(), "", "f16+sink4+win4096"), "");
  EXPECT_EQ(problems(gpt2, "", "f16"), "");
  // int4-g32 runs on a head_dim that is not a multiple of 32 (its last group is shorter).
  ModelConfig odd = narrow();
  odd.head_dim = 40;
  odd.num_heads = 2;
  odd.hidden_size = 80;
  EXPECT_EQ(problems(odd, "", "int4-g32"), "");
}

}  // namespace
}  // namespace gb::engine

// The roofline theory beyond 003's tables: parameter counts of other families
// against their published totals, knees against a scan of the latency curves,
// batch size, streaming caches, memory models and effective bits.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/theory/roofline.h"

namespace gb::engine {
namespace {

using nlohmann::json;

RooflineSetup setup_for(const std::string& model, const std::string& device = "rtx4090") {
  RooflineSetup s;
  s.model = *resolve_model(model);
  s.device = *resolve_device(device);
  return s;
}

// Published parameter totals minus the norm weights, which 003 does not count.
TEST(ParamCounts, PublishedModels) {
  // GPT-2: 124,439,808 with 25 LayerNorms of 2 x 768; tied wte counted as lm_head, wpe as embedding.
  ParamCounts g = count_params(*find_model_preset("gpt2"));
  EXPECT_EQ(g.total, 124439808 - 25 * 2 * 768);
  EXPECT_EQ(g.lm_head, 50257 * 768);
  EXPECT_EQ(g.embedding, 1024 * 768);
  EXPECT_EQ(g.decoder, 12 * 7084800);
  // Pythia-2.8B: 2,775,208,960 with 65 LayerNorms of 2 x 2560; untied.
  ParamCounts p = count_params(*find_model_preset("pythia-2.8b"));
  EXPECT_EQ(p.total, 2775208960 - 65 * 2 * 2560);
  EXPECT_EQ(p.embedding, 50304 * 2560);
  // Llama-3-8B: 8,030,261,248 with 65 RMSNorms of 4096.
  ParamCounts l = count_params(*find_model_preset("llama-3-8b"));
  EXPECT_EQ(l.total, 8030261248 - 65 * 4096);
  // Qwen2.5-1.5B: 1,543,714,304 with 57 RMSNorms of 1536; tied: no separate embedding.
  ParamCounts q = count_params(*find_model_preset("qwen2.5-1.5b"));
  EXPECT_EQ(q.total, 1543714304 - 57 * 1536);
  EXPECT_EQ(q.embedding, 0);
  EXPECT_EQ(q.activated, q.total);
}

TEST(ParamCounts, Qwen15MatchesFormula) {
  // 003 sec. 3.1 worked example: 0.5B has 294M decoder + 148.375M lm_head.
  ParamCounts p = count_params(*find_model_preset("qwen1.5-0.5b"));
  EXPECT_EQ(p.decoder, 294LL * 1024 * 1024 + 24 * 3 * 1024);  // 003's "4M" attention omits the 3 x 1024 biases
  EXPECT_EQ(p.lm_head, 151936LL * 1024);
  EXPECT_EQ(p.embedding, 151936LL * 1024);
  EXPECT_EQ(p.total, p.activated + p.embedding);
  // GQA: 003 5.2.1, k and v are (h + 1) * h / n_groups.
  const ModelConfig& m = *find_model_preset("qwen1.5-32b");
  const int64_t h = 5120, g = 5;
  const int64_t layer = (h + 1) * h + 2 * ((h + 1) * h / g) + h * h + 3 * h * 27392;
  EXPECT_EQ(count_params(m).decoder, 64 * layer);
  EXPECT_EQ(kv_elems_per_token(m), 64 * 2 * h / g);
  EXPECT_DOUBLE_EQ(n_groups(m), 5);
}

// The knees are the floors of where compute(n) - read(n) changes sign: check against
// a scan over whole prompt lengths.
TEST(Roofline, KneesMatchAScan) {
  for (const char* model : {"qwen1.5-0.5b", "qwen1.5-7b", "qwen1.5-32b", "llama-3-8b", "qwen3-1.7b", "gpt2"}) {
    for (double bits : {16.0, 8.0, 4.0}) {
      for (int64_t batch : {1, 4}) {
        RooflineSetup s = setup_for(model);
        s.weight_bits = bits;
        s.batch_size = batch;
        const Roofline r(s);
        for (PrefillModel pm : {PrefillModel::kRough, PrefillModel::kExact}) {
          const Knees k = r.knees(pm);
          std::optional<int64_t> up, down;
          bool compute_above = false;
          for (int64_t n = 1; n <= 40000; ++n) {
            const PrefillLatency l = r.prefill(pm, static_cast<double>(n));
            const bool above = l.compute_ms > l.read_ms;
            if (above && !compute_above && !up) up = n - 1;
            if (!above && compute_above && !down) down = n - 1;
            compute_above = above;
          }
          SCOPED_TRACE(std::string(model) + " w" + std::to_string(bits) + " b" + std::to_string(batch));
          EXPECT_EQ(k.first, up);
          EXPECT_EQ(k.second, down);
        }
      }
    }
  }
}

TEST(Roofline, DecodeAndBatch) {
  RooflineSetup s = setup_for("qwen1.5-7b");
  const Roofline one(s);
  // 003 sec. 4.4: 7B at 10k tokens ~ 10000 / 2064 + 13.12 ms.
  EXPECT_NEAR(one.decode_latency_ms(10000), 9999 / one.decode_W_tokens_per_ms() + one.decode_B_ms(), 1e-9);
  EXPECT_NEAR(one.decode_latency_ms(1), one.decode_B_ms(), 1e-12);
  EXPECT_NEAR(one.decode_latency_ms(10000), 17.96, 0.01);

  s.batch_size = 8;
  const Roofline eight(s);
  EXPECT_DOUBLE_EQ(eight.decode_B_ms(), one.decode_B_ms());  // weights read once per step
  EXPECT_DOUBLE_EQ(eight.decode_W_tokens_per_ms(), one.decode_W_tokens_per_ms() / 8);
  EXPECT_EQ(eight.max_context().tokens, 22072 / 8);  // (24 GiB - weights) / (8 x KV), truncated
  const PrefillLatency p1 = one.prefill(PrefillModel::kExact, 100), p8 = eight.prefill(PrefillModel::kExact, 100);
  EXPECT_NEAR(p8.compute_ms, 8 * p1.compute_ms, 1e-9);
  EXPECT_GT(p8.read_ms, p1.read_ms);
  EXPECT_LT(p8.read_ms, 8 * p1.read_ms);
}

TEST(Roofline, MemoryModels) {
  RooflineSetup s = setup_for("qwen1.5-7b");
  const int64_t c003 = Roofline(s).max_context().tokens;
  EXPECT_EQ(c003, 22072);
  s.memory_model = MemoryModel::kTotal;
  const ParamCounts p = count_params(s.model);
  const double kv = static_cast<double>(kv_elems_per_token(s.model)) * 2;
  const double free_total = s.device.memory_bytes - static_cast<double>(p.total) * 2;
  EXPECT_EQ(Roofline(s).max_context().tokens, static_cast<int64_t>(std::floor(free_total / kv)));
  s.reserve_bytes = 1024.0 * 1024 * 1024;
  EXPECT_EQ(Roofline(s).max_context().tokens,
            static_cast<int64_t>(std::floor((free_total - s.reserve_bytes) / kv)));
  s.reserve_bytes = 30.0 * 1024 * 1024 * 1024;
  EXPECT_EQ(Roofline(s).max_context().kind, ContextLimit::Kind::kOom);
  EXPECT_EQ(Roofline(s).max_context().text(), "oom");
}

TEST(Roofline, StreamingCache) {
  RooflineSetup s = setup_for("pythia-2.8b");
  s.kv_capacity = 4 + 256;
  const Roofline r(s);
  EXPECT_EQ(r.max_context().kind, ContextLimit::Kind::kUnbounded);
  EXPECT_EQ(r.max_context().text(), "unbounded");
  EXPECT_DOUBLE_EQ(r.decode_latency_ms(100), 99 / r.decode_W_tokens_per_ms() + r.decode_B_ms());
  EXPECT_DOUBLE_EQ(r.decode_latency_ms(100000), r.decode_latency_ms(260));

  // A window that does not fit is the full cache's limit.
  RooflineSetup big = setup_for("qwen1.5-7b");
  big.kv_capacity = 1000000;
  EXPECT_EQ(Roofline(big).max_context().tokens, 22072);
  // Weights that do not fit are oom whatever the window.
  RooflineSetup huge = setup_for("qwen1.5-72b");
  huge.kv_capacity = 260;
  EXPECT_EQ(Roofline(huge).max_context().kind, ContextLimit::Kind::kOom);
}

TEST(Roofline, SetupFromParams) {
  Result<RooflineSetup> s = roofline_setup_from_params(json{{"model", "qwen1.5-7b"},
                                                            {"weight_format", "int4-g128"},
                                                            {"kv_format", "int8+sink4+win252"},
                                                            {"device", "rtx4090"},
                                                            {"count_group_scales", true},
                                                            {"batch_size", 2},
                                                            {"memory_model", "total"},
                                                            {"reserve_gib", 1.5}});
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_DOUBLE_EQ(s->weight_bits, 4.25);
  EXPECT_DOUBLE_EQ(s->kv_bits, 8.25);
  EXPECT_EQ(s->kv_capacity, 256);
  EXPECT_EQ(s->batch_size, 2);
  EXPECT_EQ(s->memory_model, MemoryModel::kTotal);
  EXPECT_DOUBLE_EQ(s->reserve_bytes, 1.5 * 1024 * 1024 * 1024);

  Result<RooflineSetup> nominal = roofline_setup_from_params(
      json{{"model", "gpt2"}, {"weight_format", "q6_k"}, {"kv_format", "int4"}, {"device", "h100-sxm"}});
  ASSERT_TRUE(nominal.ok());
  EXPECT_DOUBLE_EQ(nominal->weight_bits, 6);
  EXPECT_DOUBLE_EQ(nominal->kv_bits, 4);
  EXPECT_EQ(nominal->memory_model, MemoryModel::k003);

  // bits overrides the format even with count_group_scales.
  Result<RooflineSetup> bits = roofline_setup_from_params(json{{"model", "gpt2"},
                                                               {"weight_format", "nf4-b64"},
                                                               {"kv_format", "f16"},
                                                               {"device", "rtx4090"},
                                                               {"count_group_scales", true},
                                                               {"bits", 6}});
  ASSERT_TRUE(bits.ok());
  EXPECT_DOUBLE_EQ(bits->weight_bits, 6);

  EXPECT_FALSE(roofline_setup_from_params(json{{"model", "gpt2"}}).ok());
  Result<RooflineSetup> bad = roofline_setup_from_params(
      json{{"model", "gpt2"}, {"weight_format", "f16"}, {"kv_format", "f16"}, {"device", "rtx4090"},
           {"memory_model", "all"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("memory_model"), std::string::npos);
}

}  // namespace
}  // namespace gb::engine

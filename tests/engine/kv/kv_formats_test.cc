// The quantized KV-cache formats through the model on the CPU backend: each stays
// within its named tolerance of the f32 cache, composes with the streaming policy
// (eviction moves packed slots with their scales), accounts its bytes exactly
// (scales and calibration tables included), and int8-calib reads its static scales
// from a calibration file made here by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "engine/backend/cpu_backend.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/model.h"
#include "engine/weights/synthetic.h"
#include "tests/engine/temp_dir.h"
#include "tests/engine/test_models.h"

namespace gb::engine {
namespace {
namespace kv_formats_test {

// Max |logit - f32 cache's| / max |f32 cache's logit| on the tiny models below
// (synthetic weights, 12 tokens).
constexpr double kInt8LogitTol = 0.02;
constexpr double kInt8CalibLogitTol = 0.03;
constexpr double kFp8LogitTol = 0.08;
constexpr double kInt4G32LogitTol = 0.25;
constexpr double kInt4LogitTol = 0.3;

struct Format {
  const char* name;
  KvElement element;
  double tol;
};
constexpr Format kFormats[] = {{"int8", KvElement::kInt8, kInt8LogitTol},
                               {"fp8", KvElement::kFp8, kFp8LogitTol},
                               {"int4-g32", KvElement::kInt4G32, kInt4G32LogitTol},
                               {"int4", KvElement::kInt4, kInt4LogitTol}};

// Tiny configs with heads of 64 (two int4-g32 groups), GQA and partial rotary.
ModelConfig tiny(Family f) {
  ModelConfig c;
  c.name = "tiny";
  c.family = f;
  c.vocab_size = 97;
  c.hidden_size = 128;
  c.num_layers = 2;
  c.intermediate_size = 96;
  c.num_heads = 2;
  c.num_kv_heads = f == Family::kGptNeoX ? 2 : 1;
  c.head_dim = 64;
  c.max_position_embeddings = 64;
  c.norm_eps = 1e-5;
  if (f == Family::kGptNeoX) {
    c.gated_mlp = false;
    c.qkv_bias = c.o_bias = c.mlp_bias = true;
    c.layer_norm = true;
    c.parallel_residual = true;
    c.rotary_pct = 0.25;
    c.activation = ModelConfig::Activation::kGelu;
  }
  if (f == Family::kQwen3) c.qk_norm = true;
  return c;
}

struct Loaded {
  std::unique_ptr<WeightSource> weights;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};

Loaded load(const ModelConfig& c, uint64_t seed = 1) {
  Loaded l;
  auto w = open_synthetic_weights(c, seed);
  EXPECT_TRUE(w.ok()) << w.error().message;
  l.weights = std::move(*w);
  l.backend = make_cpu_backend(2);
  auto m = Model::load(*l.weights, *l.backend);
  EXPECT_TRUE(m.ok()) << m.error().message;
  l.model = std::move(*m);
  return l;
}

using test_models::rel_err;

// Token ids of the tiny models' vocabulary.
std::vector<int32_t> tokens(int n, uint32_t seed = 7) { return test_models::tokens(n, 97, seed); }

std::vector<float> logits(Model& m, std::span<const int32_t> t, const KvCacheOptions& o) {
  auto cache = m.make_cache(o, 1);
  EXPECT_TRUE(cache.ok()) << cache.error().message;
  std::vector<float> out;
  // Prefill, then two single-token steps: both read the packed cache.
  SequenceStep s{0, t.first(t.size() - 2)};
  EXPECT_TRUE(m.forward({&s, 1}, **cache, LogitsMode::kAll, &out).ok());
  for (size_t i = t.size() - 2; i < t.size(); ++i) {
    std::vector<float> step;
    s = SequenceStep{0, t.subspan(i, 1)};
    EXPECT_TRUE(m.forward({&s, 1}, **cache, LogitsMode::kLast, &step).ok());
    out.insert(out.end(), step.begin(), step.end());
  }
  return out;
}

KvCacheOptions options(const std::string& name, const std::string& calibration = "") {
  Result<KvCacheOptions> o = kv_cache_options(name, calibration);
  EXPECT_TRUE(o.ok()) << o.error().message;
  return o.ok() ? *o : KvCacheOptions{};
}

TEST(KvFormats, EachStaysWithinItsToleranceOfTheF32Cache) {
  for (Family f : {Family::kLlama, Family::kQwen3, Family::kGptNeoX}) {
    Loaded l = load(tiny(f), 3);
    const auto t = tokens(12);
    const auto ref = logits(*l.model, t, {});
    for (const Format& fmt : kFormats) {
      const double e = rel_err(logits(*l.model, t, options(fmt.name)), ref);
      EXPECT_GT(e, 0) << fmt.name;
      EXPECT_LT(e, fmt.tol) << fmt.name << " " << family_name(f);
      std::printf("%-8s %-9s logits rel. error vs f32 cache %.5f\n", family_name(f).data(), fmt.name, e);
    }
  }
}

// With one layer a token's keys and values depend on the token alone, so after
// eviction a streaming cache holds what a fresh pass over the kept tokens writes:
// the packed slots (codes and scales) moved intact.
TEST(KvFormats, StreamingEvictionMovesPackedSlotsWithTheirScales) {
  for (Family f : {Family::kLlama, Family::kGptNeoX})
    for (const Format& fmt : kFormats) {
      ModelConfig c = tiny(f);
      c.num_layers = 1;
      Loaded l = load(c, 11);
      const auto t = tokens(10);
      const KvCacheOptions o = options(std::string(fmt.name) + "+sink2+win4");
      ASSERT_EQ(o.element, fmt.element);
      auto cache = l.model->make_cache(o, 1);
      ASSERT_TRUE(cache.ok());
      std::vector<float> got;
      for (size_t i = 0; i < t.size(); ++i) {
        SequenceStep s{0, std::span<const int32_t>(t).subspan(i, 1)};
        ASSERT_TRUE(l.model->forward({&s, 1}, **cache, LogitsMode::kLast, &got).ok());
      }
      EXPECT_EQ((*cache)->length(0), 6);
      const std::vector<int32_t> kept = {t[0], t[1], t[6], t[7], t[8], t[9]};
      auto fresh = l.model->make_cache(o, 1);
      ASSERT_TRUE(fresh.ok());
      std::vector<float> want;
      SequenceStep s{0, kept};
      ASSERT_TRUE(l.model->forward({&s, 1}, **fresh, LogitsMode::kLast, &want).ok());
      EXPECT_LT(rel_err(got, want), 1e-5) << fmt.name << " " << family_name(f);
      // And close to an f32 streaming cache over the same steps.
      KvCacheOptions f32 = o;
      f32.element = KvElement::kF32;
      auto ref_cache = l.model->make_cache(f32, 1);
      ASSERT_TRUE(ref_cache.ok());
      std::vector<float> ref;
      for (size_t i = 0; i < t.size(); ++i) {
        SequenceStep r{0, std::span<const int32_t>(t).subspan(i, 1)};
        ASSERT_TRUE(l.model->forward({&r, 1}, **ref_cache, LogitsMode::kLast, &ref).ok());
      }
      EXPECT_LT(rel_err(got, ref), fmt.tol) << fmt.name << " " << family_name(f);
    }
}

TEST(KvFormats, BytesAccountedExactlyWithScales) {
  const ModelConfig c = tiny(Family::kLlama);  // 2 layers, 1 KV head of 64
  Loaded l = load(c);
  // Per token and layer, K and V: codes, and per group f16 scale (+ f16 zero point).
  EXPECT_EQ(KvCache::bytes_per_token(c, KvElement::kInt8), 2u * 2 * (64 + 4));
  EXPECT_EQ(KvCache::bytes_per_token(c, KvElement::kFp8), 2u * 2 * (64 + 2));
  EXPECT_EQ(KvCache::bytes_per_token(c, KvElement::kInt4), 2u * 2 * (32 + 4));
  EXPECT_EQ(KvCache::bytes_per_token(c, KvElement::kInt4G32), 2u * 2 * (32 + 2 * 4));
  EXPECT_EQ(KvCache::bytes_per_token(c, KvElement::kInt8Calib), 2u * 2 * 64);
  for (const Format& fmt : kFormats) {
    KvCacheOptions o = options(fmt.name);
    o.capacity = 40;
    auto cache = l.model->make_cache(o, 3);
    ASSERT_TRUE(cache.ok());
    const uint64_t per = KvCache::bytes_per_token(c, fmt.element);
    EXPECT_EQ((*cache)->allocated_bytes(), 3u * 40 * per) << fmt.name;
    const auto t = tokens(7);
    std::vector<float> out;
    SequenceStep s{2, t};
    ASSERT_TRUE(l.model->forward({&s, 1}, **cache, LogitsMode::kLast, &out).ok());
    EXPECT_EQ((*cache)->used_bytes(), 7u * per) << fmt.name;
  }
}

// Writes a calibration file: each layer's and head's range of the keys and
// values an f32 cache holds after a pass over `t` (widened by `widen`).
std::string write_calibration(const test_support::TempDir& dir, Model& m, const ModelConfig& c,
                              std::span<const int32_t> t, float widen) {
  auto cache = m.make_cache({}, 1);
  EXPECT_TRUE(cache.ok());
  std::vector<float> out;
  SequenceStep s{0, t};
  EXPECT_TRUE(m.forward({&s, 1}, **cache, LogitsMode::kLast, &out).ok());
  std::ostringstream j;
  j << R"({"format": "gridbench-kv-calibration", "version": 1, "keys": "rotated", "num_layers": )" << c.num_layers
    << R"(, "num_kv_heads": )" << c.num_kv_heads << R"(, "layers": [)";
  for (int64_t layer = 0; layer < c.num_layers; ++layer) {
    const KvLayerView v = (*cache)->layer(0, layer);
    j << (layer ? ", {" : "{");
    for (int which = 0; which < 2; ++which) {
      const kernels::KvPlane plane = which == 0 ? v.k_plane() : v.v_plane();
      std::string mins, maxs;
      for (int64_t h = 0; h < c.num_kv_heads; ++h) {
        float mn = INFINITY, mx = -INFINITY;
        for (int64_t tok = 0; tok < v.len; ++tok)
          for (int64_t d = 0; d < c.head_dim; ++d) {
            const float x = reinterpret_cast<const float*>(plane.slot(tok))[h * c.head_dim + d];
            mn = std::min(mn, x);
            mx = std::max(mx, x);
          }
        mins += (h ? ", " : "") + std::to_string(mn * widen);
        maxs += (h ? ", " : "") + std::to_string(mx * widen);
      }
      const char* k = which == 0 ? "k" : "v";
      j << (which ? ", " : "") << '"' << k << "_min\": [" << mins << "], \"" << k << "_max\": [" << maxs << "]";
    }
    j << "}";
  }
  j << "]}";
  return dir.write("calibration.json", j.str());
}

TEST(KvFormats, Int8CalibReadsItsScalesFromACalibrationFile) {
  const ModelConfig c = tiny(Family::kQwen3);
  Loaded l = load(c, 5);
  const auto t = tokens(12);
  test_support::TempDir dir;
  // Calibrated on another text, widened by 10% for what it has not seen.
  const std::string file = write_calibration(dir, *l.model, c, tokens(32, 99), 1.1f);
  const KvCacheOptions o = options("int8-calib", file);
  ASSERT_EQ(o.element, KvElement::kInt8Calib);
  ASSERT_NE(o.calibration, nullptr);
  const auto ref = logits(*l.model, t, {});
  const double e = rel_err(logits(*l.model, t, o), ref);
  EXPECT_GT(e, 0);
  EXPECT_LT(e, kInt8CalibLogitTol);
  std::printf("int8-calib logits rel. error vs f32 cache %.5f (int8 online %.5f)\n", e,
              rel_err(logits(*l.model, t, options("int8")), ref));

  // The scale tables are backend memory the cache accounts for.
  KvCacheOptions fixed = o;
  fixed.capacity = 10;
  auto cache = l.model->make_cache(fixed, 1);
  ASSERT_TRUE(cache.ok());
  EXPECT_EQ((*cache)->allocated_bytes(),
            10u * KvCache::bytes_per_token(c, KvElement::kInt8Calib) + c.num_layers * 2 * c.num_kv_heads * 2 * 4);

  // A streaming cache stores keys unrotated: a file of rotated keys is refused.
  KvCacheOptions streaming = options("int8-calib+sink2+win8", file);
  auto refused = l.model->make_cache(streaming, 1);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("calibrates rotated keys"), std::string::npos) << refused.error().message;
}

TEST(KvFormats, CalibrationErrorsSayWhatAndWhere) {
  test_support::TempDir dir;
  auto error = [](const std::string& name, const std::string& file) {
    Result<KvCacheOptions> o = kv_cache_options(name, file);
    return o.ok() ? std::string("(accepted)") : o.error().message;
  };
  EXPECT_NE(error("int8-calib", "").find("needs a calibration"), std::string::npos);
  EXPECT_NE(error("int8-calib", dir.file("absent.json")).find("cannot read KV calibration"), std::string::npos);
  const std::string bad = dir.write(
      "bad.json",
      R"({"format": "gridbench-kv-calibration", "version": 1, "num_layers": 1, "num_kv_heads": 2,
          "layers": [{"k_min": [0, 0], "k_max": [1], "v_min": [0, 0], "v_max": [1, 1]}]})");
  EXPECT_NE(error("int8-calib", bad).find(bad + ": $.layers[0].k_max: expected an array of 2 numbers"),
            std::string::npos)
      << error("int8-calib", bad);
  const std::string wrong = dir.write("wrong.json", R"({"format": "something else", "version": 1})");
  EXPECT_NE(error("int8-calib", wrong).find("$.format: expected \"gridbench-kv-calibration\""), std::string::npos);
  const std::string inverted = dir.write(
      "inverted.json",
      R"({"format": "gridbench-kv-calibration", "version": 1, "num_layers": 1, "num_kv_heads": 1,
          "layers": [{"k_min": [2], "k_max": [1], "v_min": [0], "v_max": [1]}]})");
  EXPECT_NE(error("int8-calib", inverted).find("$.layers[0]: head 0: expected min <= max"), std::string::npos);
  EXPECT_NE(error("int8", inverted).find("is for the int8-calib KV format"), std::string::npos);

  // A calibration of another model's shape.
  const ModelConfig c = tiny(Family::kLlama);
  Loaded l = load(c);
  const std::string other = dir.write(
      "other.json",
      R"({"format": "gridbench-kv-calibration", "version": 1, "num_layers": 1, "num_kv_heads": 1,
          "layers": [{"k_min": [-1], "k_max": [1], "v_min": [-1], "v_max": [1]}]})");
  Result<KvCacheOptions> o = kv_cache_options("int8-calib", other);
  ASSERT_TRUE(o.ok()) << o.error().message;
  auto cache = l.model->make_cache(*o, 1);
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.error().message.find(other + ": calibrated for 1 layers x 1 KV heads, the model has 2 x 1"),
            std::string::npos)
      << cache.error().message;
}

// Paged caches. Two sequences of different lengths in one batch, through steps of
// several tokens that cross pages and single-token steps: every KV element, in
// pages of 1, 4 and 16 slots and in a buffer grown by doubling, gives the logits of
// a static cache bit for bit (the kernels read the same slots in the same order,
// only their addresses differ), and a paged cache holds whole pages and its table.
std::vector<float> two_sequences(Model& m, const KvCacheOptions& o, std::span<const int32_t> t) {
  auto cache = m.make_cache(o, 2);
  EXPECT_TRUE(cache.ok()) << cache.error().message;
  if (!cache.ok()) return {};
  std::vector<float> all;
  auto step = [&](size_t a0, size_t an, size_t b0, size_t bn) {
    const SequenceStep s[2] = {{0, t.subspan(a0, an)}, {1, t.subspan(b0, bn)}};
    std::vector<float> out;
    const Status st = m.forward(s, **cache, LogitsMode::kAll, &out);
    EXPECT_TRUE(st.ok()) << st.message();
    all.insert(all.end(), out.begin(), out.end());
  };
  step(0, 29, 3, 5);     // sequence 0: slots 0..28, sequence 1: 0..4
  step(29, 17, 8, 20);   // 29..45 and 5..24
  for (size_t i = 0; i < 8; ++i) step(46 + i, 1, 28 + i, 1);
  return all;
}

TEST(KvPaging, EveryElementAndPageSizeGivesTheStaticCachesLogits) {
  const char* const elements[] = {"f32", "f16", "bf16", "int8", "fp8", "int4-g32", "int4"};
  for (Family f : {Family::kLlama, Family::kQwen3, Family::kGptNeoX}) {
    Loaded l = load(tiny(f), 5);
    const auto t = tokens(60, 11);
    for (const char* e : elements) {
      KvCacheOptions fixed = options(e);
      fixed.capacity = 60;
      const std::vector<float> ref = two_sequences(*l.model, fixed, t);
      ASSERT_EQ(ref.size(), (29u + 5 + 17 + 20 + 16) * 97) << e;
      for (int64_t page : {1, 4, 16}) {
        KvCacheOptions paged = options(e);
        paged.page_tokens = page;
        EXPECT_EQ(two_sequences(*l.model, paged, t), ref) << family_name(f) << " " << e << " pages of " << page;
      }
      KvCacheOptions doubling = options(e);
      doubling.growth = KvGrowth::kDoubling;
      EXPECT_EQ(two_sequences(*l.model, doubling, t), ref) << family_name(f) << " " << e << " doubling";
    }
  }
}

TEST(KvPaging, HoldsWholePagesAndItsTablesAndRefusesOddPageSizes) {
  const ModelConfig c = tiny(Family::kLlama);
  Loaded l = load(c);
  const uint64_t per = KvCache::bytes_per_token(c, KvElement::kInt8);
  KvCacheOptions o = options("int8");
  o.page_tokens = 4;
  auto cache = l.model->make_cache(o, 2);
  ASSERT_TRUE(cache.ok());
  EXPECT_TRUE((*cache)->paged());
  EXPECT_EQ((*cache)->allocated_bytes(), 0u) << "nothing before the first token";
  const auto t = tokens(37);
  std::vector<float> out;
  SequenceStep s{1, std::span<const int32_t>(t).first(9)};  // 3 pages
  ASSERT_TRUE(l.model->forward({&s, 1}, **cache, LogitsMode::kLast, &out).ok());
  EXPECT_EQ((*cache)->page_table_bytes(), 8u * 8) << "a table of 8 entries";
  EXPECT_EQ((*cache)->allocated_bytes(), 3 * 4 * per + 8 * 8);
  EXPECT_EQ((*cache)->used_bytes(), 9 * per);
  s = SequenceStep{1, std::span<const int32_t>(t).subspan(9)};  // 37 tokens: 10 pages, the table doubled
  ASSERT_TRUE(l.model->forward({&s, 1}, **cache, LogitsMode::kLast, &out).ok());
  EXPECT_EQ((*cache)->page_table_bytes(), 16u * 8);
  EXPECT_EQ((*cache)->allocated_bytes(), 10 * 4 * per + 16 * 8);
  // Forgetting tokens keeps the pages; the sequence refills them.
  ASSERT_TRUE((*cache)->truncate(1, 5));
  s = SequenceStep{1, std::span<const int32_t>(t).first(20)};
  ASSERT_TRUE(l.model->forward({&s, 1}, **cache, LogitsMode::kLast, &out).ok());
  EXPECT_EQ((*cache)->allocated_bytes(), 10 * 4 * per + 16 * 8);

  for (int64_t bad : {0, 3, 6, -4}) {
    KvCacheOptions b;
    b.page_tokens = bad;
    auto refused = l.model->make_cache(b, 1);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.error().message.find("power of two"), std::string::npos) << refused.error().message;
  }
  // A static capacity or a streaming window is one contiguous buffer, not pages.
  KvCacheOptions fixed;
  fixed.capacity = 8;
  EXPECT_FALSE((*l.model->make_cache(fixed, 1))->paged());
  EXPECT_FALSE((*l.model->make_cache(options("f16+sink2+win6"), 1))->paged());
}

}  // namespace kv_formats_test
}  // namespace
}  // namespace gb::engine

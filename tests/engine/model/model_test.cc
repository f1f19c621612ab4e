// The forward pass on the CPU reference backend: incremental decoding equals one
// full pass for every family, batching changes nothing, KV formats and the
// streaming policy behave as documented, and bad input is refused.
#include <gtest/gtest.h>

#include <algorithm>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>
#include <set>
#include <tuple>

#include "engine/backend/backend.h"
#include "engine/model/generate.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/model.h"
#include "engine/model/sampler.h"
#include "engine/weights/hf/safetensors.h"
#include "engine/weights/synthetic.h"
#include "engine/weights/weight_source.h"
#include "engine/backend/cpu_backend.h"
#include "engine/measure/perplexity.h"
#include "tests/engine/test_models.h"

namespace gb::engine {
namespace {
namespace model_test {

using test_models::rel_err;
using test_models::tiny;
using test_models::tokens;

struct Loaded {
  std::unique_ptr<WeightSource> weights;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};

Loaded load(const ModelConfig& c, uint64_t seed = 1, int threads = 2) {
  Loaded l;
  auto w = open_synthetic_weights(c, seed);
  EXPECT_TRUE(w.ok()) << w.error().message;
  l.weights = std::move(*w);
  l.backend = make_cpu_backend(threads);
  auto m = Model::load(*l.weights, *l.backend);
  EXPECT_TRUE(m.ok()) << m.error().message;
  l.model = std::move(*m);
  return l;
}

std::vector<float> full_logits(Model& m, std::span<const int32_t> t, KvCacheOptions o = {}) {
  auto cache = m.make_cache(o, 1);
  EXPECT_TRUE(cache.ok());
  std::vector<float> logits;
  SequenceStep s{0, t};
  Status st = m.forward({&s, 1}, **cache, LogitsMode::kAll, &logits);
  EXPECT_TRUE(st.ok()) << st.message();
  return logits;
}

class EveryFamily : public ::testing::TestWithParam<Family> {};

TEST_P(EveryFamily, IncrementalDecodingEqualsOneFullPass) {
  const ModelConfig c = tiny(GetParam());
  Loaded l = load(c);
  const auto t = tokens(12, static_cast<int>(c.vocab_size));
  const std::vector<float> full = full_logits(*l.model, t);
  ASSERT_EQ(full.size(), t.size() * c.vocab_size);
  for (float v : full) ASSERT_TRUE(std::isfinite(v));

  // Prefill 5, then one token at a time; each step's last logits must match.
  auto cache = l.model->make_cache({}, 1);
  ASSERT_TRUE(cache.ok());
  std::vector<float> got;
  SequenceStep s{0, std::span<const int32_t>(t).first(5)};
  ASSERT_TRUE(l.model->forward({&s, 1}, **cache, LogitsMode::kAll, &got).ok());
  std::vector<float> incremental = got;
  for (size_t i = 5; i < t.size(); ++i) {
    s = SequenceStep{0, std::span<const int32_t>(t).subspan(i, 1)};
    ASSERT_TRUE(l.model->forward({&s, 1}, **cache, LogitsMode::kLast, &got).ok());
    incremental.insert(incremental.end(), got.begin(), got.end());
  }
  EXPECT_LT(rel_err(incremental, full), 1e-5);
  EXPECT_EQ((*cache)->length(0), 12);
}

TEST_P(EveryFamily, BatchedSequencesOfDifferentLengthsEqualSingleRuns) {
  const ModelConfig c = tiny(GetParam());
  Loaded l = load(c, 3);
  const auto a = tokens(9, static_cast<int>(c.vocab_size), 1);
  const auto b = tokens(4, static_cast<int>(c.vocab_size), 2);
  auto cache = l.model->make_cache({}, 2);
  ASSERT_TRUE(cache.ok());
  const SequenceStep steps[2] = {{0, a}, {1, b}};
  std::vector<float> both;
  ASSERT_TRUE(l.model->forward(steps, **cache, LogitsMode::kAll, &both).ok());
  std::vector<float> expect = full_logits(*l.model, a);
  const std::vector<float> eb = full_logits(*l.model, b);
  expect.insert(expect.end(), eb.begin(), eb.end());
  EXPECT_LT(rel_err(both, expect), 1e-6);

  // A batched decode step: both sequences advance by one token.
  const int32_t next[2] = {5, 6};
  const SequenceStep dec[2] = {{0, {&next[0], 1}}, {1, {&next[1], 1}}};
  std::vector<float> last;
  ASSERT_TRUE(l.model->forward(dec, **cache, LogitsMode::kLast, &last).ok());
  auto a2 = a;
  a2.push_back(5);
  auto b2 = b;
  b2.push_back(6);
  const std::vector<float> fa = full_logits(*l.model, a2), fb = full_logits(*l.model, b2);
  std::vector<float> want(fa.end() - c.vocab_size, fa.end());
  want.insert(want.end(), fb.end() - c.vocab_size, fb.end());
  EXPECT_LT(rel_err(last, want), 1e-5);
}

TEST_P(EveryFamily, HalfPrecisionCachesStayCloseToF32) {
  const ModelConfig c = tiny(GetParam());
  Loaded l = load(c, 5);
  const auto t = tokens(10, static_cast<int>(c.vocab_size));
  const auto ref = full_logits(*l.model, t);
  KvCacheOptions f16;
  f16.element = KvElement::kF16;
  KvCacheOptions bf16;
  bf16.element = KvElement::kBF16;
  const double e16 = rel_err(full_logits(*l.model, t, f16), ref);
  const double eb16 = rel_err(full_logits(*l.model, t, bf16), ref);
  EXPECT_GT(e16, 0);  // the rounding is real...
  EXPECT_LT(e16, 5e-3);  // ...and small: 11 bits of mantissa
  EXPECT_GT(eb16, e16);  // bf16 keeps 8 bits
  EXPECT_LT(eb16, 5e-2);
}

TEST_P(EveryFamily, StreamingCacheWithoutEvictionEqualsFullCache) {
  const ModelConfig c = tiny(GetParam());
  Loaded l = load(c, 9);
  const auto t = tokens(10, static_cast<int>(c.vocab_size));
  KvCacheOptions s;
  s.sink_tokens = 4;
  s.window_tokens = 8;
  EXPECT_LT(rel_err(full_logits(*l.model, t, s), full_logits(*l.model, t)), 1e-5);
}

// Synthetic weights are made in the backend's memory (Backend::fill_synthetic for
// f32, f16 and bf16; Backend::quantize_synthetic for the quantized formats it
// makes, nf4/fp4's double quantization on the host) with the host path's bits: the
// same logits and weight bytes as drawing them in f32 on the host and quantizing
// there, in every format. On the host only what the loader rearranges or keeps in
// f32 (norms, biases, GPT-2's Conv1D and GPT-NeoX's fused qkv) is drawn, and the
// matrices of fake quantization. Widths of 64 and 128 (256 and 512 for the K
// types), so that every block and group fits.
TEST_P(EveryFamily, SyntheticWeightsMadeOnTheBackendEqualTheHostMadeOnes) {
  ModelConfig c = tiny(GetParam());
  const auto t = tokens(9, static_cast<int>(c.vocab_size));
  const std::vector<std::string> on_backend_formats = {
      "", "f16", "bf16", "int8-channel", "int8-tensor", "int8-g32", "int8-llm", "fp8-channel", "fp8-g64",
      "int4-g32", "nf4-b64", "nf4-b64-dq", "fp4-b64", "fp4-b64-dq", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1"};
  std::vector<std::string> formats = on_backend_formats;
  formats.push_back("fake:int4-g32");  // host only
  // The K types: rows of 256 and 512.
  const std::vector<std::string> k_formats = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};
  formats.insert(formats.end(), k_formats.begin(), k_formats.end());
  for (const std::string& format : formats) {
    const bool k = std::find(k_formats.begin(), k_formats.end(), format) != k_formats.end();
    c.hidden_size = k ? 256 : 64;
    c.intermediate_size = 2 * c.hidden_size;
    c.head_dim = c.hidden_size / c.num_heads;
    std::vector<float> logits[2];
    uint64_t weight_bytes[2] = {0, 0}, host_drawn[2] = {0, 0};
    for (int on_backend = 0; on_backend < 2; ++on_backend) {
      auto w = SyntheticWeights::open(c, 4);
      ASSERT_TRUE(w.ok()) << w.error().message;
      std::unique_ptr<Backend> b = make_cpu_backend(2);
      Result<LoadOptions> o = load_options(format);
      ASSERT_TRUE(o.ok()) << o.error().message;
      o->draw_on_backend = on_backend == 1;
      auto m = Model::load(**w, *b, *o);
      ASSERT_TRUE(m.ok()) << format << ": " << m.error().message;
      logits[on_backend] = full_logits(**m, t);
      weight_bytes[on_backend] = (*m)->weight_bytes();
      host_drawn[on_backend] = (*w)->total_generated_bytes();
    }
    SCOPED_TRACE(std::string(family_name(c.family)) + " '" + format + "'");
    EXPECT_EQ(logits[1], logits[0]);
    EXPECT_EQ(weight_bytes[1], weight_bytes[0]);
    EXPECT_LT(host_drawn[1], host_drawn[0]);  // the embedding table at least
    const bool made_on_backend =
        k || std::find(on_backend_formats.begin(), on_backend_formats.end(), format) != on_backend_formats.end();
    if (c.family == Family::kLlama) {
      // Only the norms (input and post-attention per layer, and the final one) where
      // the backend makes every matrix.
      const uint64_t norms = 4u * c.hidden_size * (2 * c.num_layers + 1);
      if (made_on_backend) {
        EXPECT_EQ(host_drawn[1], norms);
      } else {
        EXPECT_GT(host_drawn[1], norms);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, EveryFamily,
                         ::testing::Values(Family::kLlama, Family::kQwen2, Family::kQwen3, Family::kGptNeoX,
                                           Family::kGpt2),
                         [](const auto& info) { return std::string(family_name(info.param)) == "gpt_neox"
                                                           ? std::string("gpt_neox")
                                                           : std::string(family_name(info.param)); });

// With one layer, a token's keys and values depend on the token alone, so a
// streaming cache after eviction holds exactly what a fresh pass over the kept
// tokens (sinks + window, positions re-assigned from 0) computes. (Not GPT-2:
// its learned positions are added to the input, so a cached token keeps the
// position of the slot it was written to.)
TEST(StreamingCache, EvictionKeepsSinksAndWindowWithPositionsReassigned) {
  for (Family f : {Family::kLlama, Family::kQwen3, Family::kGptNeoX}) {
    ModelConfig c = tiny(f);
    c.num_layers = 1;
    Loaded l = load(c, 11);
    const auto t = tokens(10, static_cast<int>(c.vocab_size));
    KvCacheOptions o;
    o.sink_tokens = 2;
    o.window_tokens = 4;
    auto cache = l.model->make_cache(o, 1);
    ASSERT_TRUE(cache.ok());
    std::vector<float> got;
    for (size_t i = 0; i < t.size(); ++i) {
      SequenceStep s{0, std::span<const int32_t>(t).subspan(i, 1)};
      ASSERT_TRUE(l.model->forward({&s, 1}, **cache, LogitsMode::kLast, &got).ok());
      EXPECT_LE((*cache)->length(0), 6);
    }
    EXPECT_EQ((*cache)->length(0), 6);
    EXPECT_EQ((*cache)->seen(0), 10);
    const std::vector<int32_t> kept = {t[0], t[1], t[6], t[7], t[8], t[9]};
    const auto ref = full_logits(*l.model, kept);
    const std::vector<float> want(ref.end() - c.vocab_size, ref.end());
    EXPECT_LT(rel_err(got, want), 1e-5) << family_name(f);
  }
}

TEST(StreamingCache, LongPromptsRunInWindowSizedPieces) {
  ModelConfig c = tiny(Family::kQwen2);
  Loaded l = load(c, 12);
  const auto t = tokens(20, static_cast<int>(c.vocab_size));
  KvCacheOptions o;
  o.sink_tokens = 2;
  o.window_tokens = 6;
  auto cache = l.model->make_cache(o, 1);
  ASSERT_TRUE(cache.ok());
  std::vector<float> all;
  SequenceStep s{0, t};
  ASSERT_TRUE(l.model->forward({&s, 1}, **cache, LogitsMode::kAll, &all).ok());
  EXPECT_EQ(all.size(), t.size() * c.vocab_size);
  EXPECT_EQ((*cache)->length(0), 8);
  EXPECT_EQ((*cache)->seen(0), 20);
  // The first window's logits are those of a full cache.
  const auto full = full_logits(*l.model, std::span<const int32_t>(t).first(8));
  EXPECT_LT(rel_err(std::vector<float>(all.begin(), all.begin() + 6 * c.vocab_size),
                    std::vector<float>(full.begin(), full.begin() + 6 * c.vocab_size)),
            1e-5);
}

TEST(KvCacheBytes, AccountedExactly) {
  const ModelConfig c = tiny(Family::kLlama);  // 2 layers, 2 kv heads x 8
  Loaded l = load(c);
  EXPECT_EQ(KvCache::bytes_per_token(c, KvElement::kF32), 2u * 2 * 2 * 8 * 4);
  EXPECT_EQ(KvCache::bytes_per_token(c, KvElement::kF16), 2u * 2 * 2 * 8 * 2);

  KvCacheOptions fixed;
  fixed.element = KvElement::kF16;
  fixed.capacity = 40;
  auto st = l.model->make_cache(fixed, 3);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ((*st)->allocated_bytes(), 3u * 40 * KvCache::bytes_per_token(c, KvElement::kF16));
  const auto t = tokens(7, 97);
  std::vector<float> logits;
  SequenceStep s{1, t};
  ASSERT_TRUE(l.model->forward({&s, 1}, **st, LogitsMode::kLast, &logits).ok());
  EXPECT_EQ((*st)->used_bytes(), 7u * KvCache::bytes_per_token(c, KvElement::kF16));
  EXPECT_EQ((*st)->allocated_bytes(), 3u * 40 * KvCache::bytes_per_token(c, KvElement::kF16));
  // Static capacity is a hard limit.
  const auto more = tokens(34, 97);
  s = SequenceStep{1, more};
  Status over = l.model->forward({&s, 1}, **st, LogitsMode::kLast, &logits);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.message().find("static capacity of 40"), std::string::npos) << over.message();

  // Growth on demand: nothing allocated up front, then pages of 256 slots and
  // their table (8 entries of 8 bytes), or a buffer of 256 slots grown by doubling.
  auto grow = l.model->make_cache({}, 1);
  ASSERT_TRUE(grow.ok());
  EXPECT_EQ((*grow)->allocated_bytes(), 0u);
  s = SequenceStep{0, t};
  ASSERT_TRUE(l.model->forward({&s, 1}, **grow, LogitsMode::kLast, &logits).ok());
  EXPECT_EQ((*grow)->allocated_bytes(), 256u * KvCache::bytes_per_token(c, KvElement::kF32) + 64);
  EXPECT_EQ((*grow)->page_table_bytes(), 64u);
  KvCacheOptions doubling;
  doubling.growth = KvGrowth::kDoubling;
  auto dbl = l.model->make_cache(doubling, 1);
  ASSERT_TRUE(dbl.ok());
  ASSERT_TRUE(l.model->forward({&s, 1}, **dbl, LogitsMode::kLast, &logits).ok());
  EXPECT_EQ((*dbl)->allocated_bytes(), 256u * KvCache::bytes_per_token(c, KvElement::kF32));
}

TEST(KvCacheBytes, GrowthKeepsTheCachedTokens) {
  ModelConfig c = tiny(Family::kQwen3);
  c.max_position_embeddings = 1024;
  Loaded l = load(c);
  const auto t = tokens(300, 97);
  const auto full = full_logits(*l.model, t);
  const uint64_t per = KvCache::bytes_per_token(c, KvElement::kF32);
  // Doubling 256 -> 512 slots; a second page of 256; pages of 1 (300 of them, a
  // table of 512 entries).
  for (auto [growth, page, bytes] : {std::tuple{KvGrowth::kDoubling, int64_t{256}, 512 * per},
                                     std::tuple{KvGrowth::kPaged, int64_t{256}, 512 * per + 8 * 8},
                                     std::tuple{KvGrowth::kPaged, int64_t{1}, 300 * per + 512 * 8}}) {
    KvCacheOptions o;
    o.growth = growth;
    o.page_tokens = page;
    auto cache = l.model->make_cache(o, 1);
    ASSERT_TRUE(cache.ok());
    std::vector<float> step;
    SequenceStep s{0, std::span<const int32_t>(t).first(250)};
    ASSERT_TRUE(l.model->forward({&s, 1}, **cache, LogitsMode::kLast, &step).ok());
    s = SequenceStep{0, std::span<const int32_t>(t).subspan(250)};
    ASSERT_TRUE(l.model->forward({&s, 1}, **cache, LogitsMode::kLast, &step).ok());
    EXPECT_EQ((*cache)->allocated_bytes(), bytes) << "pages of " << page;
    EXPECT_LT(rel_err(step, std::vector<float>(full.end() - 97, full.end())), 1e-5) << "pages of " << page;
  }
}

TEST(ModelErrors, TokensOutsideTheVocabularyAndPositionsBeyondTheTable) {
  const ModelConfig c = tiny(Family::kGpt2);
  Loaded l = load(c);
  auto cache = l.model->make_cache({}, 1);
  ASSERT_TRUE(cache.ok());
  std::vector<float> logits;
  const int32_t bad[2] = {3, 97};
  SequenceStep s{0, bad};
  Status st = l.model->forward({&s, 1}, **cache, LogitsMode::kLast, &logits);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("token id 97 is outside the vocabulary"), std::string::npos) << st.message();
  EXPECT_EQ((*cache)->length(0), 0);  // nothing was written

  const auto t = tokens(65, 97);  // GPT-2's table has 64 positions
  s = SequenceStep{0, t};
  st = l.model->forward({&s, 1}, **cache, LogitsMode::kLast, &logits);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("exceeds the model's limit of 64"), std::string::npos) << st.message();

  s = SequenceStep{3, t};
  EXPECT_FALSE(l.model->forward({&s, 1}, **cache, LogitsMode::kLast, &logits).ok());
}

TEST(ModelThreads, ResultsDoNotDependOnTheThreadCount) {
  const ModelConfig c = tiny(Family::kLlama);
  Loaded one = load(c, 4, 1), three = load(c, 4, 3);
  const auto t = tokens(9, 97);
  EXPECT_EQ(full_logits(*one.model, t), full_logits(*three.model, t));
}

TEST(Rope, Llama3ScalingKeepsHighFrequenciesAndDividesLowOnes) {
  ModelConfig c = tiny(Family::kLlama);
  c.rope_theta = 10000;
  c.rope_factor = 8;
  c.rope_low_freq_factor = 1;
  c.rope_high_freq_factor = 4;
  c.rope_original_max_positions = 64;
  const auto f = rope_inv_freq(c, 32);
  ModelConfig plain = c;
  plain.rope_scaling = ModelConfig::RopeScaling::kNone;
  const auto p = rope_inv_freq(plain, 32);
  ASSERT_EQ(f.size(), 16u);
  // Wavelength 2*pi/inv: below 64/4 = 16 kept, above 64 divided by 8.
  for (size_t i = 0; i < f.size(); ++i) {
    const double wavelen = 2 * 3.141592653589793 / p[i];
    if (wavelen < 16) {
      EXPECT_FLOAT_EQ(f[i], p[i]);
    }
    if (wavelen > 64) {
      EXPECT_FLOAT_EQ(f[i], p[i] / 8);
    }
    if (wavelen >= 16 && wavelen <= 64) {
      EXPECT_LE(f[i], p[i]);
      EXPECT_GE(f[i], p[i] / 8);
    }
  }
  plain.rope_scaling = ModelConfig::RopeScaling::kLinear;
  plain.rope_factor = 2;
  const auto lin = rope_inv_freq(plain, 32);
  for (size_t i = 0; i < lin.size(); ++i) EXPECT_FLOAT_EQ(lin[i], p[i] / 2);
}

TEST(Sampler, GreedyTakesTheFirstMaximum) {
  const std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(argmax(l), 1);
  Sampler s({});
  EXPECT_EQ(s.next(l), 1);
}

TEST(Sampler, SeededSamplingIsReproducibleAndRespectsTopKAndTopP) {
  std::vector<float> l(50);
  for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<float>(std::sin(double(i)) * 3);
  SamplingOptions o;
  o.temperature = 1.0;
  o.seed = 42;
  Sampler a(o), b(o);
  std::vector<int32_t> sa, sb;
  for (int i = 0; i < 200; ++i) {
    sa.push_back(a.next(l));
    sb.push_back(b.next(l));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_GT(std::set<int32_t>(sa.begin(), sa.end()).size(), 5u);  // it really samples
  o.seed = 43;
  Sampler c2(o);
  std::vector<int32_t> sc;
  for (int i = 0; i < 200; ++i) sc.push_back(c2.next(l));
  EXPECT_NE(sa, sc);

  o.top_k = 3;
  Sampler k(o);
  std::vector<int32_t> idx(l.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int32_t x, int32_t y) { return l[x] > l[y]; });
  for (int i = 0; i < 200; ++i) {
    const int32_t t = k.next(l);
    EXPECT_TRUE(t == idx[0] || t == idx[1] || t == idx[2]) << t;
  }
  o.top_k = 0;
  o.top_p = 1e-6;  // only the most likely token
  Sampler p(o);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(p.next(l), argmax(l));

  EXPECT_FALSE(validate(SamplingOptions{.temperature = -1}).ok());
  EXPECT_FALSE(validate(SamplingOptions{.top_p = 0}).ok());
}

TEST(Generate, GreedyGenerationFollowsTheLogitsAndStopsAtEos) {
  const ModelConfig c = tiny(Family::kQwen2);
  Loaded l = load(c);
  const auto prompt = tokens(4, 97);
  auto cache = l.model->make_cache({}, 1);
  ASSERT_TRUE(cache.ok());
  GenerateOptions o;
  o.max_new_tokens = 6;
  auto r = generate(*l.model, **cache, 0, prompt, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->tokens.size(), 6u);
  EXPECT_EQ(r->stop_reason, "length");
  EXPECT_EQ(r->decode_ms.size(), 5u);
  // Each token is the argmax of a full pass over everything before it.
  std::vector<int32_t> seq = prompt;
  for (int32_t t : r->tokens) {
    const auto full = full_logits(*l.model, seq);
    EXPECT_EQ(t, argmax(std::span<const float>(full).last(97)));
    seq.push_back(t);
  }
  // Stop at the third token when it is declared EOS.
  auto cache2 = l.model->make_cache({}, 1);
  o.eos_token_id = r->tokens[2];
  auto r2 = generate(*l.model, **cache2, 0, prompt, o);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->stop_reason, "eos");
  // The first occurrence of that token ends it.
  const size_t first = std::find(r->tokens.begin(), r->tokens.end(), r->tokens[2]) - r->tokens.begin();
  EXPECT_EQ(r2->tokens.size(), first + 1);
}

// The backend's sample_rows with Sampler::uniform() draws the tokens Sampler::next
// draws from the same logits and seed, under every kind of cut (the device sampler's
// contract: the same random stream).
TEST(Sampler, BackendSampleRowsDrawsAsSamplerNextWithItsUniforms) {
  std::unique_ptr<Backend> cpu = make_cpu_backend(2);
  const int64_t V = 300, rows = 4;
  std::mt19937_64 g(5);
  std::normal_distribution<float> d(0.0f, 2.0f);
  std::vector<float> l(static_cast<size_t>(rows * V));
  for (float& x : l) x = std::round(d(g) * 4) / 4;  // ties included
  for (SamplingOptions o : {SamplingOptions{.temperature = 1.0, .seed = 1},
                            SamplingOptions{.temperature = 0.7, .top_k = 5, .seed = 2},
                            SamplingOptions{.temperature = 1.3, .top_p = 0.8, .seed = 3},
                            SamplingOptions{.temperature = 0.9, .top_k = 40, .top_p = 0.5, .seed = 4}}) {
    Sampler host(o), split(o);
    for (int step = 0; step < 50; ++step) {
      std::vector<double> u(static_cast<size_t>(rows));
      std::vector<int32_t> want(static_cast<size_t>(rows)), got(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) {
        want[static_cast<size_t>(r)] = host.next(std::span<const float>(l).subspan(static_cast<size_t>(r * V), V));
        u[static_cast<size_t>(r)] = split.uniform();
      }
      cpu->sample_rows(l.data(), rows, V, SamplingCut{o.temperature, o.top_k, o.top_p}, u.data(), got.data());
      ASSERT_EQ(got, want) << "temperature " << o.temperature << " top_k " << o.top_k << " top_p " << o.top_p;
    }
  }
}

// forward_kept leaves the logits forward() returns in the backend: their argmax and
// target log-probabilities equal those of the host logits (bit for bit on the CPU
// backend), in kLast and kAll modes and for a streaming step run in pieces; the
// reductions refuse rows that were not kept.
TEST(Model, KeptLogitsReduceAsTheHostLogits) {
  const ModelConfig c = tiny(Family::kLlama);
  Loaded l = load(c, 3);
  const int64_t V = c.vocab_size;
  std::vector<int32_t> ids(2);
  EXPECT_FALSE(l.model->argmax(ids).ok());  // nothing kept yet
  const auto t0 = tokens(5, static_cast<int>(V), 1), t1 = tokens(3, static_cast<int>(V), 2);
  for (LogitsMode mode : {LogitsMode::kLast, LogitsMode::kAll}) {
    auto host_cache = l.model->make_cache({}, 2), kept_cache = l.model->make_cache({}, 2);
    ASSERT_TRUE(host_cache.ok() && kept_cache.ok());
    const std::vector<SequenceStep> batch = {{0, t0}, {1, t1}};
    std::vector<float> logits;
    ASSERT_TRUE(l.model->forward(batch, **host_cache, mode, &logits).ok());
    ASSERT_TRUE(l.model->forward_kept(batch, **kept_cache, mode).ok());
    const int64_t rows = static_cast<int64_t>(logits.size()) / V;
    ASSERT_EQ(l.model->kept_rows(), rows);
    std::vector<int32_t> am(static_cast<size_t>(rows)), targets(static_cast<size_t>(rows));
    std::vector<double> lp(static_cast<size_t>(rows));
    ASSERT_TRUE(l.model->argmax(am).ok());
    for (int64_t r = 0; r < rows; ++r) targets[static_cast<size_t>(r)] = r % 3 == 2 ? -1 : static_cast<int32_t>((r * 7) % V);
    ASSERT_TRUE(l.model->target_log_probs(targets, lp).ok());
    for (int64_t r = 0; r < rows; ++r) {
      const std::span<const float> row = std::span<const float>(logits).subspan(static_cast<size_t>(r * V), V);
      EXPECT_EQ(am[static_cast<size_t>(r)], argmax(row)) << r;
      const int32_t t = targets[static_cast<size_t>(r)];
      EXPECT_EQ(lp[static_cast<size_t>(r)], t < 0 ? 0.0 : -token_nll(row, t)) << r;
    }
    EXPECT_FALSE(l.model->argmax(std::span<int32_t>(am).first(1)).ok());  // one row asked, more kept
    std::vector<int32_t> outside(static_cast<size_t>(rows), static_cast<int32_t>(V));
    EXPECT_FALSE(l.model->target_log_probs(outside, lp).ok());
    // Any forward() discards them.
    std::vector<float> again;
    const SequenceStep one{0, std::span<const int32_t>(t0).first(1)};
    ASSERT_TRUE(l.model->forward({&one, 1}, **host_cache, LogitsMode::kLast, &again).ok());
    EXPECT_EQ(l.model->kept_rows(), 0);
  }
  // A streaming step longer than the window runs in pieces: its logits are kept too.
  KvCacheOptions o;
  o.sink_tokens = 2;
  o.window_tokens = 6;
  const auto t = tokens(20, static_cast<int>(V));
  auto a = l.model->make_cache(o, 1), b = l.model->make_cache(o, 1);
  ASSERT_TRUE(a.ok() && b.ok());
  const SequenceStep s{0, t};
  std::vector<float> all;
  ASSERT_TRUE(l.model->forward({&s, 1}, **a, LogitsMode::kAll, &all).ok());
  ASSERT_TRUE(l.model->forward_kept({&s, 1}, **b, LogitsMode::kAll).ok());
  ASSERT_EQ(l.model->kept_rows(), 20);
  std::vector<int32_t> am(20);
  ASSERT_TRUE(l.model->argmax(am).ok());
  for (int64_t r = 0; r < 20; ++r)
    EXPECT_EQ(am[static_cast<size_t>(r)], argmax(std::span<const float>(all).subspan(static_cast<size_t>(r * V), V)));
}

// Sampled generation (the draw in the backend) gives the tokens of Sampler::next on
// the host logits of each step, with the same seed.
TEST(Generate, SampledGenerationFollowsSamplerNextOnTheHostLogits) {
  const ModelConfig c = tiny(Family::kQwen3);
  Loaded l = load(c, 4);
  const auto prompt = tokens(4, static_cast<int>(c.vocab_size));
  GenerateOptions o;
  o.max_new_tokens = 8;
  o.sampling = SamplingOptions{.temperature = 1.5, .top_k = 20, .top_p = 0.9, .seed = 11};
  auto cache = l.model->make_cache({}, 1);
  ASSERT_TRUE(cache.ok());
  auto r = generate(*l.model, **cache, 0, prompt, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  Sampler sampler(o.sampling);
  auto host_cache = l.model->make_cache({}, 1);
  std::vector<float> logits;
  std::vector<int32_t> want, step_tokens = prompt;
  for (int i = 0; i < 8; ++i) {
    const SequenceStep s{0, step_tokens};
    ASSERT_TRUE(l.model->forward({&s, 1}, **host_cache, LogitsMode::kLast, &logits).ok());
    want.push_back(sampler.next(logits));
    step_tokens = {want.back()};
  }
  EXPECT_EQ(r->tokens, want);
  EXPECT_GT(std::set<int32_t>(want.begin(), want.end()).size(), 1u);  // it really samples
}

}  // namespace model_test
}  // namespace
}  // namespace gb::engine

namespace gb::engine {
namespace {
namespace model_test {

// A checkpoint with one NaN weight is refused at load, naming the tensor.
TEST(ModelErrors, NanWeightsNameTheTensor) {
  namespace fs = std::filesystem;
  const std::string src = std::string(GB_SOURCE_DIR) + "/tests/data/golden/llama_gqa";
  const fs::path dir = fs::temp_directory_path() / ("gb_nan_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(src + "/config.json", dir / "config.json", fs::copy_options::overwrite_existing);
  auto f = SafetensorsFile::open(src + "/model.safetensors");
  ASSERT_TRUE(f.ok());
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<SafetensorsWriteEntry> entries;
  for (const SafetensorsEntry& e : (*f)->tensors()) {
    TensorView v = (*f)->view(e);
    bytes.emplace_back(v.bytes(), v.bytes() + v.nbytes());
    if (e.name == "model.layers.1.mlp.up_proj.weight") {
      const float nan = std::nanf("");
      std::memcpy(bytes.back().data() + 4 * 37, &nan, 4);
    }
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    TensorView v = (*f)->view((*f)->tensors()[i]);
    v.data = bytes[i].data();
    entries.push_back({(*f)->tensors()[i].name, v});
  }
  ASSERT_TRUE(write_safetensors((dir / "model.safetensors").string(), entries).ok());
  auto w = open_weights("hf:" + dir.string());
  ASSERT_TRUE(w.ok()) << w.error().message;
  auto backend = make_cpu_backend(1);
  auto m = Model::load(**w, *backend);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("model.layers.1.mlp.up_proj.weight has a non-finite value"), std::string::npos)
      << m.error().message;
  EXPECT_NE(m.error().message.find("element 37"), std::string::npos) << m.error().message;
  fs::remove_all(dir);
}

}  // namespace model_test
}  // namespace
}  // namespace gb::engine

namespace gb::engine {
namespace {
namespace model_test {

// Dropping a mapped checkpoint's pages keeps its views readable, with the same bytes.
TEST(WeightSources, ReleasingMappedPagesKeepsViewsValid) {
  const std::vector<std::string> refs = {"hf:" + std::string(GB_SOURCE_DIR) + "/tests/data/golden/qwen2",
                                         "synthetic:gpt2@3"};
  for (const std::string& ref : refs) {
    auto w = open_weights(ref);
    ASSERT_TRUE(w.ok()) << w.error().message;
    const std::string name = ref.starts_with("hf:") ? "model.layers.1.mlp.up_proj.weight" : "transformer.h.0.ln_1.bias";
    auto t = (*w)->tensor(name);
    ASSERT_TRUE(t.ok());
    const std::vector<float> before = to_f32(*t);
    (*w)->release_tensors();
    auto again = (*w)->tensor(name);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(to_f32(*again), before) << ref;
  }
}

}  // namespace model_test
}  // namespace
}  // namespace gb::engine

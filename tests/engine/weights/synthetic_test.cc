// synthetic:PRESET[@SEED] weights: deterministic from (seed, name) whatever the
// request order or thread count; every preset's parameters listed with
// expected_hf_tensors' names and shapes and counted without generating anything;
// the documented statistics; the tied head; errors; the byte-level tokenizer; and a
// plain reference forward pass (all families, full depth) showing that the scales
// keep activations finite and logits non-degenerate (std ~2).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <numeric>

#include "engine/theory/roofline.h"
#include "engine/weights/synthetic.h"
#include "kernels/codecs/synthetic_value.h"

namespace gb::engine {
namespace {
namespace synthetic_test {

using Clock = std::chrono::steady_clock;

std::unique_ptr<SyntheticWeights> open_ok(const ModelConfig& c, uint64_t seed) {
  auto w = SyntheticWeights::open(c, seed);
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.message());
  return w.ok() ? std::move(w).value() : nullptr;
}

std::vector<uint8_t> bytes_of(const TensorView& t) {
  return std::vector<uint8_t>(t.bytes(), t.bytes() + t.nbytes());
}

// A small model of each family (for tests that generate everything).
ModelConfig tiny(Family f) {
  ModelConfig c = *find_model_preset(f == Family::kGpt2      ? "gpt2"
                                     : f == Family::kGptNeoX ? "pythia-2.8b"
                                     : f == Family::kQwen3   ? "qwen3-1.7b"
                                     : f == Family::kQwen2   ? "qwen1.5-0.5b"
                                                             : "llama-3-8b");
  c.name = "tiny-" + std::string(family_name(f));
  c.vocab_size = 300;
  c.hidden_size = 64;
  c.num_layers = 2;
  c.intermediate_size = 96;
  c.num_heads = 4;
  c.num_kv_heads = f == Family::kLlama ? 2 : 4;
  c.head_dim = 16;
  c.max_position_embeddings = 32;
  return c;
}

TEST(Synthetic, GoldenValuesAreStable) {
  // The generator is part of the format: synthetic results are comparable across
  // versions only while these stay.
  const uint64_t key = synthetic_tensor_key(0, "transformer.wte.weight");
  EXPECT_EQ(key, synthetic_tensor_key(0, "transformer.wte.weight"));
  EXPECT_NE(key, synthetic_tensor_key(1, "transformer.wte.weight"));
  EXPECT_NE(key, synthetic_tensor_key(0, "transformer.wpe.weight"));
  const float v0 = synthetic_standard_value(key, 0), v1 = synthetic_standard_value(key, 1);
  EXPECT_NE(v0, v1);
  EXPECT_EQ(key, 0xfd5657735fe39a55ull);
  EXPECT_FLOAT_EQ(v0, -0.13029496f);
  EXPECT_FLOAT_EQ(v1, 0.059042383f);
}

TEST(Synthetic, FillIsIndependentOfThreadsAndRange) {
  const uint64_t key = synthetic_tensor_key(42, "x");
  const uint64_t n = (uint64_t{1} << 20) + 37;
  std::vector<float> one(n), many(n), part(1000);
  synthetic_fill(key, 0.5f, 2.0f, 0, n, one.data(), 1);
  synthetic_fill(key, 0.5f, 2.0f, 0, n, many.data(), 7);
  EXPECT_EQ(0, std::memcmp(one.data(), many.data(), n * 4));
  synthetic_fill(key, 0.5f, 2.0f, 123456, part.size(), part.data(), 3);
  EXPECT_EQ(0, std::memcmp(one.data() + 123456, part.data(), part.size() * 4));
  for (uint64_t i : {uint64_t{0}, uint64_t{1}, uint64_t{999999}})
    EXPECT_FLOAT_EQ(one[i], 0.5f + 2.0f * synthetic_standard_value(key, i));
}

// The generator's per-element draw lives in kernels/codecs/synthetic_value.h, shared
// with the device: synthetic_fill gives, bit for bit, the shared synthetic_element,
// and both give the values of the generator as it was written before it was shared
// (re-derived here: splitmix64 of key + (i + 1) * golden, the centred Irwin-Hall sum
// of its four 16-bit fields, mean + (stddev * inv_std) * sum in f64).
TEST(Synthetic, SharedElementDrawIsTheHostGeneratorBitForBit) {
  auto before = [](uint64_t key, float mean, float stddev, uint64_t i) {
    uint64_t z = key + (i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z = z ^ (z >> 31);
    const int64_t sum = static_cast<int64_t>((z & 0xffff) + ((z >> 16) & 0xffff) + ((z >> 32) & 0xffff) + (z >> 48));
    const double scale = static_cast<double>(stddev) * (1.0 / std::sqrt(4.0 * (65536.0 * 65536.0 - 1.0) / 12.0));
    return static_cast<float>(mean + scale * static_cast<double>(sum - 2 * 65535));
  };
  for (auto [mean, stddev] : {std::pair{0.0f, 0.0625f}, std::pair{1.0f, 0.02f}, std::pair{-0.5f, 3.0f}}) {
    const uint64_t key = synthetic_tensor_key(9, "model.layers.3.self_attn.q_proj.weight");
    const uint64_t begin = 1000003, n = 50000;
    std::vector<float> fill(n);
    synthetic_fill(key, mean, stddev, begin, n, fill.data(), 2);
    const double scale = kernels::synthetic_scale(stddev);
    for (uint64_t j = 0; j < n; ++j) {
      const float shared = kernels::synthetic_element(key, mean, scale, begin + j);
      const float old = before(key, mean, stddev, begin + j);
      ASSERT_EQ(std::memcmp(&shared, &fill[j], 4), 0) << j;
      ASSERT_EQ(std::memcmp(&old, &fill[j], 4), 0) << j;
    }
  }
}

TEST(Synthetic, StandardStreamIsBoundedAndStandardised) {
  const uint64_t key = synthetic_tensor_key(3, "stats");
  const uint64_t n = 1 << 22;
  std::vector<float> v(n);
  synthetic_fill(key, 0.0f, 1.0f, 0, n, v.data());
  double s = 0, s2 = 0, s4 = 0, mx = 0;
  for (float x : v) {
    s += x;
    s2 += double(x) * x;
    s4 += double(x) * x * x * x;
    mx = std::max(mx, std::fabs(double(x)));
  }
  const double mean = s / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.003);
  EXPECT_NEAR(std::sqrt(var), 1.0, 0.002);
  EXPECT_LE(mx, std::sqrt(12.0) + 1e-5);  // Irwin-Hall n=4: |z| <= 2 sqrt(3)
  EXPECT_GT(mx, 3.0);
  EXPECT_NEAR(s4 / n, 2.7, 0.02);  // kurtosis of Irwin-Hall(4): 3 - 6/(5*4)
}

TEST(Synthetic, DeterministicAndOrderIndependent) {
  const ModelConfig c = tiny(Family::kQwen2);
  auto a = open_ok(c, 7), b = open_ok(c, 7), d = open_ok(c, 8);
  ASSERT_TRUE(a && b && d);
  std::vector<std::string> names;
  for (const ExpectedTensor& t : a->parameters()) names.push_back(t.name);
  std::vector<std::vector<uint8_t>> forward;
  for (const std::string& n : names) forward.push_back(bytes_of(*a->tensor(n)));
  // b asks in reverse order, and twice.
  for (size_t i = names.size(); i-- > 0;) ASSERT_EQ(bytes_of(*b->tensor(names[i])), forward[i]) << names[i];
  for (size_t i = 0; i < names.size(); ++i) ASSERT_EQ(bytes_of(*b->tensor(names[i])), forward[i]) << names[i];
  // Another seed: every tensor differs.
  for (size_t i = 0; i < names.size(); ++i) EXPECT_NE(bytes_of(*d->tensor(names[i])), forward[i]) << names[i];
  // Asking again returns the same buffer.
  EXPECT_EQ(a->tensor(names[3])->data, a->tensor(names[3])->data);
  // Tensors of the same shape but another name differ too.
  EXPECT_NE(bytes_of(*a->tensor("model.layers.0.self_attn.q_proj.weight")),
            bytes_of(*a->tensor("model.layers.1.self_attn.q_proj.weight")));
  // Released tensors free their memory and come back identical.
  EXPECT_GT(a->generated_bytes(), 0u);
  a->release_tensors();
  EXPECT_EQ(a->generated_bytes(), 0u);
  for (size_t i = 0; i < names.size(); ++i) ASSERT_EQ(bytes_of(*a->tensor(names[i])), forward[i]) << names[i];
}

TEST(Synthetic, EveryPresetListsItsParametersWithoutGenerating) {
  for (const ModelConfig& p : model_presets()) {
    SCOPED_TRACE(p.name);
    const auto t0 = Clock::now();
    auto w = open_ok(p, 1);
    ASSERT_TRUE(w);
    const uint64_t bytes = w->parameter_bytes();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    EXPECT_LT(ms, 200.0);  // a 110B model is listed, not generated
    EXPECT_EQ(w->generated_bytes(), 0u);

    const std::vector<ExpectedTensor> expected = expected_hf_tensors(p, "transformer.");
    ASSERT_EQ(w->parameters().size(), expected.size());
    uint64_t sum = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(w->parameters()[i].name, expected[i].name);
      EXPECT_EQ(w->parameters()[i].shape, expected[i].shape);
      sum += static_cast<uint64_t>(shape_numel(expected[i].shape));
      ASSERT_TRUE(w->init_of(expected[i].name).has_value());
    }
    EXPECT_EQ(bytes, 4 * sum);

    // Independently: 003's count (norms excluded, tied head once) plus the norms.
    const ParamCounts pc = count_params(p);
    const int64_t H = p.hidden_size, L = p.num_layers;
    int64_t norms = (2 * L + 1) * H * (p.layer_norm ? 2 : 1);
    if (p.qk_norm) norms += 2 * L * p.head_dim;
    EXPECT_EQ(bytes, 4 * static_cast<uint64_t>(pc.total + norms));

    // The kinds: one embedding (plus an untied head), projections, norms, biases.
    std::map<SyntheticInit::Kind, int> kinds;
    for (const ExpectedTensor& t : expected) ++kinds[w->init_of(t.name)->kind];
    EXPECT_EQ(kinds[SyntheticInit::Kind::kEmbedding], p.tie_embeddings ? 1 : 2);
    EXPECT_EQ(kinds[SyntheticInit::Kind::kPositions], p.learned_positions ? 1 : 0);
    const int per_layer_in = p.family == Family::kGpt2 || p.family == Family::kGptNeoX ? 2 : 5;
    EXPECT_EQ(kinds[SyntheticInit::Kind::kInputProjection], per_layer_in * L);
    EXPECT_EQ(kinds[SyntheticInit::Kind::kOutputProjection], 2 * L);
    EXPECT_EQ(kinds[SyntheticInit::Kind::kNormWeight], 2 * L + 1 + (p.qk_norm ? 2 * L : 0));
    EXPECT_EQ(w->generated_bytes(), 0u);
  }
}

TEST(Synthetic, KnownParameterCounts) {
  auto count = [](const char* preset) { return open_ok(*find_model_preset(preset), 0)->parameter_bytes() / 4; };
  EXPECT_EQ(count("gpt2"), 124439808u);        // HF gpt2 (tied)
  EXPECT_EQ(count("llama-3-8b"), 8030261248u); // Meta-Llama-3-8B
  EXPECT_EQ(count("pythia-2.8b"), 2775208960u); // Pythia paper
}

TEST(Synthetic, GeneratesAllOfGpt2WithTheDocumentedStatistics) {
  auto w = open_ok(*find_model_preset("gpt2"), 0);
  ASSERT_TRUE(w);
  const auto t0 = Clock::now();
  for (const ExpectedTensor& t : w->parameters()) ASSERT_TRUE(w->tensor(t.name).ok()) << t.name;
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("generated all of synthetic:gpt2 (%llu bytes) in %.3f s\n",
              static_cast<unsigned long long>(w->generated_bytes()), s);
  EXPECT_EQ(w->generated_bytes(), w->parameter_bytes());
  EXPECT_LT(s, 20.0);  // ~0.5 s on 2 cores; generous for sanitizers and slow CI

  const double H = 768, L = 12;
  for (const ExpectedTensor& t : w->parameters()) {
    SCOPED_TRACE(t.name);
    const TensorView v = *w->tensor(t.name);
    ASSERT_EQ(v.dtype, DType::kF32);
    ASSERT_EQ(v.shape, t.shape);
    ASSERT_EQ(first_non_finite(v), -1);
    ASSERT_EQ(reinterpret_cast<uintptr_t>(v.data) % 64, 0u);
    const SyntheticInit init = *w->init_of(t.name);
    const float* p = static_cast<const float*>(v.data);
    const int64_t n = v.numel();
    double s1 = 0, s2 = 0;
    for (int64_t i = 0; i < n; ++i) s1 += p[i];
    const double mean = s1 / n;
    for (int64_t i = 0; i < n; ++i) s2 += (p[i] - mean) * (p[i] - mean);
    const double sd = std::sqrt(s2 / n);
    EXPECT_NEAR(mean, init.mean, 5 * init.stddev / std::sqrt(double(n)) + 1e-6);
    EXPECT_NEAR(sd, init.stddev, init.stddev * (n >= 10000 ? 0.02 : 0.1));
  }
  // The documented table, for GPT-2's names (Conv1D: fan_in is shape[0]).
  auto sd = [&](const char* name) { return w->init_of(name)->stddev; };
  EXPECT_FLOAT_EQ(sd("transformer.wte.weight"), 2 / std::sqrt(H));
  EXPECT_FLOAT_EQ(sd("transformer.wpe.weight"), 0.5 / std::sqrt(H));
  EXPECT_FLOAT_EQ(sd("transformer.h.3.attn.c_attn.weight"), 1 / std::sqrt(H));
  EXPECT_FLOAT_EQ(sd("transformer.h.3.mlp.c_fc.weight"), 1 / std::sqrt(H));
  EXPECT_FLOAT_EQ(sd("transformer.h.3.attn.c_proj.weight"), 1 / std::sqrt(H * 2 * L));
  EXPECT_FLOAT_EQ(sd("transformer.h.3.mlp.c_proj.weight"), 1 / std::sqrt(4 * H * 2 * L));
  EXPECT_FLOAT_EQ(sd("transformer.h.3.mlp.c_proj.bias"), 0.02f);
  EXPECT_FLOAT_EQ(w->init_of("transformer.ln_f.weight")->mean, 1.0f);
  EXPECT_EQ(w->init_of("transformer.h.0.ln_1.bias")->kind, SyntheticInit::Kind::kBias);

  // The tied head is the embedding, the same buffer.
  EXPECT_EQ(w->tensor("lm_head.weight")->data, w->tensor("transformer.wte.weight")->data);
  EXPECT_EQ(w->tensor("lm_head.weight")->shape, (std::vector<int64_t>{50257, 768}));
}

TEST(Synthetic, LinearFanInIsTheInputDimension) {
  auto w = open_ok(*find_model_preset("llama-3-8b"), 0);
  EXPECT_FLOAT_EQ(w->init_of("model.layers.0.mlp.down_proj.weight")->stddev, 1 / std::sqrt(14336.0 * 64));
  EXPECT_FLOAT_EQ(w->init_of("model.layers.0.mlp.up_proj.weight")->stddev, 1 / std::sqrt(4096.0));
  EXPECT_FLOAT_EQ(w->init_of("model.layers.0.self_attn.o_proj.weight")->stddev, 1 / std::sqrt(4096.0 * 64));
  EXPECT_FLOAT_EQ(w->init_of("lm_head.weight")->stddev, 2 / std::sqrt(4096.0));
  auto py = open_ok(*find_model_preset("pythia-2.8b"), 0);
  EXPECT_EQ(py->init_of("gpt_neox.layers.5.attention.dense.weight")->kind, SyntheticInit::Kind::kOutputProjection);
  EXPECT_EQ(py->init_of("gpt_neox.layers.5.mlp.dense_4h_to_h.weight")->kind, SyntheticInit::Kind::kOutputProjection);
  EXPECT_EQ(py->init_of("gpt_neox.layers.5.attention.query_key_value.weight")->kind,
            SyntheticInit::Kind::kInputProjection);
  EXPECT_EQ(py->init_of("gpt_neox.final_layer_norm.bias")->kind, SyntheticInit::Kind::kBias);
  EXPECT_EQ(py->init_of("embed_out.weight")->kind, SyntheticInit::Kind::kEmbedding);
  auto q3 = open_ok(*find_model_preset("qwen3-1.7b"), 0);
  EXPECT_EQ(q3->init_of("model.layers.0.self_attn.q_norm.weight")->kind, SyntheticInit::Kind::kNormWeight);
}

TEST(Synthetic, UntiedHeadIsItsOwnTensor) {
  const ModelConfig c = tiny(Family::kQwen2);  // qwen1.5: untied
  ASSERT_FALSE(c.tie_embeddings);
  auto w = open_ok(c, 0);
  const TensorView e = *w->tensor("model.embed_tokens.weight"), h = *w->tensor("lm_head.weight");
  EXPECT_NE(e.data, h.data);
  EXPECT_NE(bytes_of(e), bytes_of(h));
  ModelConfig tied = c;
  tied.tie_embeddings = true;
  auto t = open_ok(tied, 0);
  EXPECT_EQ(t->tensor("lm_head.weight")->data, t->tensor("model.embed_tokens.weight")->data);
  EXPECT_EQ(t->parameter_bytes() + 4u * 300 * 64, w->parameter_bytes());
  ModelConfig neox = tiny(Family::kGptNeoX);
  neox.tie_embeddings = true;
  auto n = open_ok(neox, 0);
  EXPECT_EQ(n->tensor("embed_out.weight")->data, n->tensor("gpt_neox.embed_in.weight")->data);
}

TEST(Synthetic, UnknownTensorIsAnErrorNamingIt) {
  auto w = open_ok(*find_model_preset("gpt2"), 5);
  for (const char* name : {"transformer.h.12.ln_1.weight", "wte.weight", "model.embed_tokens.weight", ""}) {
    Result<TensorView> t = w->tensor(name);
    ASSERT_FALSE(t.ok()) << name;
    EXPECT_NE(t.message().find("'" + std::string(name) + "'"), std::string::npos) << t.message();
    EXPECT_NE(t.message().find("synthetic:gpt2@5"), std::string::npos) << t.message();
  }
  EXPECT_EQ(w->generated_bytes(), 0u);
  EXPECT_FALSE(w->init_of("nope").has_value());
}

TEST(Synthetic, OpensReferences) {
  auto a = open_synthetic_weights("synthetic:gpt2@7");
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_EQ((*a)->describe(), "synthetic:gpt2@7");
  EXPECT_EQ((*a)->config().name, "synthetic:gpt2@7");
  EXPECT_EQ((*a)->config().hidden_size, 768);
  auto b = open_synthetic_weights("synthetic:qwen1.5-72b");
  ASSERT_TRUE(b.ok()) << b.message();
  EXPECT_EQ((*b)->describe(), "synthetic:qwen1.5-72b@0");
  EXPECT_GT((*b)->parameter_bytes(), 4ull * 72'000'000'000ull);

  // Same seed, same bytes, through the reference and through the config.
  auto c = open_synthetic_weights(*find_model_preset("gpt2"), 7);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->describe(), "synthetic:gpt2@7");
  EXPECT_EQ(bytes_of(*(*a)->tensor("transformer.h.0.ln_1.weight")),
            bytes_of(*(*c)->tensor("transformer.h.0.ln_1.weight")));

  for (const char* bad : {"gpt2", "hf:/models/x", "synthetic:nope", "synthetic:gpt2@x", "synthetic:gpt2@"}) {
    auto r = open_synthetic_weights(std::string(bad));
    EXPECT_FALSE(r.ok()) << bad;
  }
  auto r = open_synthetic_weights(std::string("gpt2"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("not a synthetic model"), std::string::npos) << r.message();
}

TEST(Synthetic, RefusesBadConfigs) {
  auto fails = [](ModelConfig c, const char* what) {
    auto w = SyntheticWeights::open(c, 0);
    ASSERT_FALSE(w.ok()) << what;
    EXPECT_NE(w.message().find(what), std::string::npos) << w.message();
    EXPECT_NE(w.message().find(c.name), std::string::npos) << w.message();
  };
  ModelConfig c = tiny(Family::kLlama);
  c.vocab_size = 0;
  fails(c, "vocab_size");
  c = tiny(Family::kLlama);
  c.num_kv_heads = 3;
  fails(c, "num_kv_heads");
  c = tiny(Family::kGpt2);
  c.max_position_embeddings = 0;
  fails(c, "max_position_embeddings");
  c = tiny(Family::kLlama);
  c.hidden_size = int64_t{1} << 40;
  fails(c, "too large");
}

TEST(Synthetic, ByteLevelTokenizerOfTheVocab) {
  auto w = open_ok(*find_model_preset("gpt2"), 0);
  const Tokenizer* t = w->tokenizer();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t, w->tokenizer());
  EXPECT_EQ(t->vocab_size(), 50257);
  const std::string text = "Hello, world \xE4\xB8\x96\xE7\x95\x8C\n\xFF";
  const std::vector<int32_t> ids = t->encode(text);
  EXPECT_EQ(ids.size(), text.size());
  for (int32_t id : ids) EXPECT_LT(id, 256);
  EXPECT_EQ(t->decode(ids), text);

  ModelConfig small = tiny(Family::kLlama);
  small.vocab_size = 256;
  EXPECT_EQ(open_ok(small, 0)->tokenizer()->vocab_size(), 256);
  small.vocab_size = 100;  // a model can be smaller than one id per byte, but has no tokenizer
  auto s = open_ok(small, 0);
  EXPECT_EQ(s->tokenizer(), nullptr);
  EXPECT_TRUE(s->tensor("model.embed_tokens.weight").ok());
}

// ---- a plain reference forward pass, to check the scales ----------------------
//
// Positions enter only through GPT-2's wpe: rope is a rotation of q and k (it keeps
// their norms), so leaving it out changes values but not the scales checked here.

struct ForwardStats {
  bool finite = true;
  double max_residual_rms = 0;  // over layers and positions
  double min_logit_std = 1e30, max_logit_std = 0;
  double max_position_correlation = -1;  // between the logits of two positions
  double max_softmax_p = 0;
};

class RefForward {
 public:
  RefForward(SyntheticWeights& w) : w_(w), c_(w.config()) {}

  const float* get(const std::string& name) {
    Result<TensorView> t = w_.tensor(name);
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.message());
    return static_cast<const float*>(t->data);
  }
  // y[out] = W x (+ b); W is [out, in] (Linear) or [in, out] (Conv1D).
  std::vector<float> linear(const std::string& prefix, const std::vector<float>& x, int64_t out, bool bias) {
    const int64_t in = static_cast<int64_t>(x.size());
    const float* W = get(prefix + ".weight");
    std::vector<float> y(out, 0.0f);
    if (c_.family == Family::kGpt2) {
      for (int64_t i = 0; i < in; ++i)
        for (int64_t o = 0; o < out; ++o) y[o] += W[i * out + o] * x[i];
    } else {
      for (int64_t o = 0; o < out; ++o) {
        double s = 0;
        for (int64_t i = 0; i < in; ++i) s += W[o * in + i] * x[i];
        y[o] = static_cast<float>(s);
      }
    }
    if (bias) {
      const float* b = get(prefix + ".bias");
      for (int64_t o = 0; o < out; ++o) y[o] += b[o];
    }
    return y;
  }
  std::vector<float> norm(const std::string& prefix, const std::vector<float>& x) {
    const size_t n = x.size();
    const float* g = get(prefix + ".weight");
    double mean = 0, var = 0;
    if (c_.layer_norm) {
      for (float v : x) mean += v;
      mean /= n;
    }
    for (float v : x) var += (v - mean) * (v - mean);
    var /= n;
    const double inv = 1.0 / std::sqrt(var + c_.norm_eps);
    std::vector<float> y(n);
    const float* b = c_.layer_norm ? get(prefix + ".bias") : nullptr;
    for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>((x[i] - mean) * inv * g[i] + (b ? b[i] : 0.0f));
    return y;
  }
  static float gelu(float x) { return 0.5f * x * (1.0f + std::tanh(0.7978845608f * (x + 0.044715f * x * x * x))); }
  static float silu(float x) { return x / (1.0f + std::exp(-x)); }

  ForwardStats run(const std::vector<int32_t>& ids) {
    ForwardStats st;
    const int64_t H = c_.hidden_size, T = static_cast<int64_t>(ids.size());
    const int64_t nh = c_.num_heads, nkv = c_.num_kv_heads, hd = c_.head_dim, I = c_.intermediate_size;
    const std::string embed = w_.parameters().front().name;
    std::vector<std::vector<float>> h(T, std::vector<float>(H));
    for (int64_t t = 0; t < T; ++t) {
      const float* e = get(embed) + ids[t] * H;
      for (int64_t j = 0; j < H; ++j) h[t][j] = e[j];
      if (c_.learned_positions) {
        const float* p = get("transformer.wpe.weight") + t * H;
        for (int64_t j = 0; j < H; ++j) h[t][j] += p[j];
      }
    }
    auto check = [&](const std::vector<float>& v) {
      double s = 0;
      for (float x : v) {
        if (!std::isfinite(x)) st.finite = false;
        s += double(x) * x;
      }
      st.max_residual_rms = std::max(st.max_residual_rms, std::sqrt(s / v.size()));
    };
    for (int64_t l = 0; l < c_.num_layers; ++l) {
      std::string p, ln1, ln2;
      switch (c_.family) {
        case Family::kGpt2: p = "transformer.h." + std::to_string(l) + "."; ln1 = p + "ln_1"; ln2 = p + "ln_2"; break;
        case Family::kGptNeoX: p = "gpt_neox.layers." + std::to_string(l) + "."; ln1 = p + "input_layernorm";
          ln2 = p + "post_attention_layernorm"; break;
        default: p = "model.layers." + std::to_string(l) + "."; ln1 = p + "input_layernorm";
          ln2 = p + "post_attention_layernorm";
      }
      // q, k, v per position.
      std::vector<std::vector<float>> q(T), k(T), v(T);
      for (int64_t t = 0; t < T; ++t) {
        const std::vector<float> x = norm(ln1, h[t]);
        if (c_.family == Family::kGpt2) {
          const std::vector<float> qkv = linear(p + "attn.c_attn", x, 3 * H, true);
          q[t].assign(qkv.begin(), qkv.begin() + H);
          k[t].assign(qkv.begin() + H, qkv.begin() + 2 * H);
          v[t].assign(qkv.begin() + 2 * H, qkv.end());
        } else if (c_.family == Family::kGptNeoX) {
          const std::vector<float> qkv = linear(p + "attention.query_key_value", x, 3 * nh * hd, c_.qkv_bias);
          for (int64_t hh = 0; hh < nh; ++hh)  // [heads, 3, head_dim]
            for (int64_t d = 0; d < hd; ++d) {
              q[t].push_back(qkv[(hh * 3 + 0) * hd + d]);
              k[t].push_back(qkv[(hh * 3 + 1) * hd + d]);
              v[t].push_back(qkv[(hh * 3 + 2) * hd + d]);
            }
        } else {
          q[t] = linear(p + "self_attn.q_proj", x, nh * hd, c_.qkv_bias);
          k[t] = linear(p + "self_attn.k_proj", x, nkv * hd, c_.qkv_bias);
          v[t] = linear(p + "self_attn.v_proj", x, nkv * hd, c_.qkv_bias);
          if (c_.qk_norm) {
            for (int64_t hh = 0; hh < nh; ++hh) {
              std::vector<float> head(q[t].begin() + hh * hd, q[t].begin() + (hh + 1) * hd);
              head = norm(p + "self_attn.q_norm", head);
              std::copy(head.begin(), head.end(), q[t].begin() + hh * hd);
            }
            for (int64_t hh = 0; hh < nkv; ++hh) {
              std::vector<float> head(k[t].begin() + hh * hd, k[t].begin() + (hh + 1) * hd);
              head = norm(p + "self_attn.k_norm", head);
              std::copy(head.begin(), head.end(), k[t].begin() + hh * hd);
            }
          }
        }
      }
      std::vector<std::vector<float>> attn_out(T);
      for (int64_t t = 0; t < T; ++t) {
        std::vector<float> o(nh * hd, 0.0f);
        for (int64_t hh = 0; hh < nh; ++hh) {
          const int64_t kh = hh / (nh / nkv);
          std::vector<double> s(t + 1);
          double mx = -1e300;
          for (int64_t u = 0; u <= t; ++u) {
            double d = 0;
            for (int64_t j = 0; j < hd; ++j) d += q[t][hh * hd + j] * k[u][kh * hd + j];
            s[u] = d / std::sqrt(double(hd));
            mx = std::max(mx, s[u]);
          }
          double z = 0;
          for (double& x : s) z += (x = std::exp(x - mx));
          for (int64_t u = 0; u <= t; ++u)
            for (int64_t j = 0; j < hd; ++j) o[hh * hd + j] += static_cast<float>(s[u] / z) * v[u][kh * hd + j];
        }
        attn_out[t] = o;
      }
      for (int64_t t = 0; t < T; ++t) {
        std::vector<float> a;
        if (c_.family == Family::kGpt2) a = linear(p + "attn.c_proj", attn_out[t], H, true);
        else if (c_.family == Family::kGptNeoX) a = linear(p + "attention.dense", attn_out[t], H, c_.o_bias);
        else a = linear(p + "self_attn.o_proj", attn_out[t], H, c_.o_bias);
        // MLP input: the residual after attention, or (parallel) the layer input.
        std::vector<float> mid = h[t];
        for (int64_t j = 0; j < H; ++j) mid[j] += a[j];
        const std::vector<float> x = norm(ln2, c_.parallel_residual ? h[t] : mid);
        std::vector<float> m;
        if (c_.family == Family::kGpt2) {
          std::vector<float> f = linear(p + "mlp.c_fc", x, I, true);
          for (float& y : f) y = gelu(y);
          m = linear(p + "mlp.c_proj", f, H, true);
        } else if (c_.family == Family::kGptNeoX) {
          std::vector<float> f = linear(p + "mlp.dense_h_to_4h", x, I, c_.mlp_bias);
          for (float& y : f) y = gelu(y);
          m = linear(p + "mlp.dense_4h_to_h", f, H, c_.mlp_bias);
        } else {
          std::vector<float> g = linear(p + "mlp.gate_proj", x, I, c_.mlp_bias);
          const std::vector<float> u = linear(p + "mlp.up_proj", x, I, c_.mlp_bias);
          for (int64_t j = 0; j < I; ++j) g[j] = silu(g[j]) * u[j];
          m = linear(p + "mlp.down_proj", g, H, c_.mlp_bias);
        }
        for (int64_t j = 0; j < H; ++j) h[t][j] = mid[j] + m[j];
        check(h[t]);
      }
    }
    const std::string final_norm = c_.family == Family::kGpt2      ? "transformer.ln_f"
                                   : c_.family == Family::kGptNeoX ? "gpt_neox.final_layer_norm"
                                                                   : "model.norm";
    const std::string head = c_.family == Family::kGptNeoX ? "embed_out" : "lm_head";
    std::vector<std::vector<float>> logits(T);
    for (int64_t t = 0; t < T; ++t) {
      const std::vector<float> x = norm(final_norm, h[t]);
      const float* W = get(head + ".weight");
      logits[t].resize(c_.vocab_size);
      double s1 = 0, s2 = 0, mx = -1e300;
      for (int64_t o = 0; o < c_.vocab_size; ++o) {
        double s = 0;
        for (int64_t j = 0; j < H; ++j) s += W[o * H + j] * x[j];
        logits[t][o] = static_cast<float>(s);
        if (!std::isfinite(logits[t][o])) st.finite = false;
        s1 += s;
        s2 += s * s;
        mx = std::max(mx, s);
      }
      const double mean = s1 / c_.vocab_size, sd = std::sqrt(s2 / c_.vocab_size - mean * mean);
      st.min_logit_std = std::min(st.min_logit_std, sd);
      st.max_logit_std = std::max(st.max_logit_std, sd);
      double z = 0;
      for (float v : logits[t]) z += std::exp(v - mx);
      st.max_softmax_p = std::max(st.max_softmax_p, 1.0 / z);
    }
    for (int64_t a = 0; a < T; ++a)
      for (int64_t b = a + 1; b < T; ++b) {
        double ab = 0, aa = 0, bb = 0;
        for (int64_t o = 0; o < c_.vocab_size; ++o) {
          ab += double(logits[a][o]) * logits[b][o];
          aa += double(logits[a][o]) * logits[a][o];
          bb += double(logits[b][o]) * logits[b][o];
        }
        st.max_position_correlation = std::max(st.max_position_correlation, ab / std::sqrt(aa * bb));
      }
    return st;
  }

 private:
  SyntheticWeights& w_;
  const ModelConfig& c_;
};

void expect_sane(const ForwardStats& st, const std::string& what) {
  std::printf("%-28s residual rms <= %.3f, logit std %.3f..%.3f, max p %.4f, position corr <= %.3f\n", what.c_str(),
              st.max_residual_rms, st.min_logit_std, st.max_logit_std, st.max_softmax_p, st.max_position_correlation);
  EXPECT_TRUE(st.finite) << what;
  EXPECT_LT(st.max_residual_rms, 10.0) << what;
  EXPECT_GT(st.min_logit_std, 1.0) << what;
  EXPECT_LT(st.max_logit_std, 4.0) << what;
  EXPECT_LT(st.max_softmax_p, 0.9) << what;              // not one-hot
  EXPECT_LT(st.max_position_correlation, 0.99) << what;  // the input matters
}

TEST(Synthetic, ForwardOfGpt2IsFiniteWithLogitStdNearTwo) {
  auto w = open_ok(*find_model_preset("gpt2"), 11);
  ASSERT_TRUE(w);
  RefForward f(*w);
  expect_sane(f.run({464, 2068, 7586, 21831, 18045, 625, 262, 16931}), "synthetic:gpt2@11");
}

TEST(Synthetic, ForwardOfEveryFamilyAtFullDepthIsSane) {
  // Each preset's depth, family and flags at a reduced width (the scales depend on
  // the depth, not the width): 80 layers of qwen1.5-72b, 32 of pythia, ...
  for (const char* name : {"qwen1.5-72b", "qwen2.5-1.5b", "qwen3-1.7b", "llama-3-8b", "internlm-7b", "pythia-2.8b"}) {
    ModelConfig c = *find_model_preset(name);
    c.name = std::string(name) + "-narrow";
    c.vocab_size = 2048;
    c.hidden_size = 128;
    c.num_heads = 8;
    c.num_kv_heads = c.num_kv_heads == c.num_heads ? 8 : 2;
    c.head_dim = c.family == Family::kQwen3 ? 32 : 16;
    c.intermediate_size = 384;
    auto w = open_ok(c, 3);
    ASSERT_TRUE(w);
    RefForward f(*w);
    expect_sane(f.run({1, 17, 300, 1024, 5, 2047, 9, 77}), c.name);
  }
}

}  // namespace synthetic_test
}  // namespace
}  // namespace gb::engine

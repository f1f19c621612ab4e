// Whole-model logits on the CUDA backend against the CPU backend: tiny synthetic
// models of every family (the golden llama, qwen2, qwen3, gpt-neox and gpt-2
// configs, widened to rows of 256 so that every weight format fits) in f32, f16,
// bf16, int8, q4_0, q4_k and nf4, with f32, f16, int8, fp8 and int4 KV caches: a
// batch of two prompts of different lengths (prefill, every token's logits), then
// three decode steps of both. The relative RMS of all logits is bounded by the
// weight format's named tolerance plus the KV format's. And decode steps launched
// from CUDA graphs against the same steps enqueued op by op. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/model/model.h"
#include "engine/weights/synthetic.h"
#include "engine/weights/weight_source.h"
#include "tests/cuda/backend/backend_pair.h"
#include "tests/cuda/gpu_test_util.h"

namespace gb::testing {
namespace {

using engine::KvCache;
using engine::LogitsMode;
using engine::Model;
using engine::SequenceStep;
using engine::ModelConfig;

// Relative RMS of every logit, CUDA against CPU, by weight format: f32 may run on
// TF32 or bf16 tensor cores in prefill, the others on the same packed weights with
// activations that a prefill GEMM may round to bf16.
constexpr double kTolLogitsF32 = 5e-3;
constexpr double kTolLogits16 = 1e-2;
constexpr double kTolLogitsQuantized = 2e-2;
// Added for a quantized KV cache: each backend quantizes its own keys and values, and
// a rounding tie may fall to the next code.
constexpr double kTolLogitsQuantizedKv = 1e-2;

double weight_tol(const std::string& f) {
  if (f == "f32") return kTolLogitsF32;
  if (f == "f16" || f == "bf16") return kTolLogits16;
  return kTolLogitsQuantized;
}

Result<ModelConfig> widened(const std::string& golden) {
  Result<std::unique_ptr<engine::WeightSource>> w =
      engine::open_weights("hf:" + std::string(GB_SOURCE_DIR) + "/tests/data/golden/" + golden);
  if (!w) return w.error();
  ModelConfig c = (*w)->config();
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.head_dim = 256 / c.num_heads;
  return c;
}

// Every logit of a two-sequence prefill and three decode steps.
Result<std::vector<float>> run(engine::Backend& b, const ModelConfig& c, const std::string& wf, const std::string& kf) {
  Result<std::unique_ptr<engine::WeightSource>> w = engine::open_synthetic_weights(c, 7);
  if (!w) return w.error();
  Result<engine::LoadOptions> o = engine::load_options(wf);
  if (!o) return o.error();
  Result<std::unique_ptr<Model>> m = Model::load(**w, b, *o);
  if (!m) return m.error();
  Result<engine::KvCacheOptions> kv = engine::kv_cache_options(kf);
  if (!kv) return kv.error();
  Result<std::unique_ptr<KvCache>> cache = (*m)->make_cache(*kv, 2);
  if (!cache) return cache.error();
  const int64_t V = c.vocab_size;
  std::vector<int32_t> a, bb;
  for (int i = 0; i < 8; ++i) a.push_back(static_cast<int32_t>((i * 37 + 5) % V));
  for (int i = 0; i < 5; ++i) bb.push_back(static_cast<int32_t>((i * 53 + 11) % V));
  std::vector<float> all, part;
  const SequenceStep prefill[2] = {{0, a}, {1, bb}};
  if (Status s = (*m)->forward(prefill, **cache, LogitsMode::kAll, &part); !s.ok()) return s.error();
  all.insert(all.end(), part.begin(), part.end());
  for (int step = 0; step < 3; ++step) {
    const std::vector<int32_t> t0 = {static_cast<int32_t>((step * 17 + 3) % V)};
    const std::vector<int32_t> t1 = {static_cast<int32_t>((step * 29 + 1) % V)};
    const SequenceStep decode[2] = {{0, t0}, {1, t1}};
    if (Status s = (*m)->forward(decode, **cache, LogitsMode::kLast, &part); !s.ok()) return s.error();
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

// Every (family, weight format, KV format) of the table below.
struct Combo {
  std::string family, weights, kv;
};
std::vector<Combo> combos() {
  const std::vector<std::string> families = {"llama_gqa", "qwen2", "qwen3", "gpt_neox", "gpt2"};
  const std::vector<std::string> weights = {"f32", "f16", "bf16", "int8-channel", "q4_0", "q4_k", "nf4-b64"};
  const std::vector<std::string> kvs = {"f32", "f16", "int8", "fp8", "int4"};
  std::vector<Combo> out;
  for (const std::string& fam : families)
    for (const std::string& wf : weights)
      for (const std::string& kf : kvs)
        // Every weight format with an f16 cache, every cache with bf16 and q4_k weights.
        if (kf == "f16" || wf == "bf16" || wf == "q4_k") out.push_back({fam, wf, kf});
  return out;
}

TEST(CudaModelLogits, TheCpuHalfOfTheTableRunsHere) {
  // Without a GPU, what can be checked is the table: every combination loads and runs
  // on the CPU backend with finite logits.
  std::unique_ptr<engine::Backend> cpu = engine::make_cpu_backend(2);
  for (const Combo& k : combos()) {
    Result<ModelConfig> c = widened(k.family);
    ASSERT_TRUE(c.ok()) << k.family << ": " << c.message();
    Result<std::vector<float>> want = run(*cpu, *c, k.weights, k.kv);
    ASSERT_TRUE(want.ok()) << k.family << " " << k.weights << " kv " << k.kv << ": " << want.message();
    ASSERT_EQ(want->size(), static_cast<size_t>((8 + 5 + 3 * 2) * c->vocab_size));
    for (float v : *want) ASSERT_TRUE(std::isfinite(v)) << k.family << " " << k.weights << " kv " << k.kv;
  }
}

TEST(CudaModelLogits, EveryFamilyWeightAndKvFormatAgreesWithTheCpu) {
  GB_REQUIRE_GPU();
  std::unique_ptr<engine::Backend> cpu = engine::make_cpu_backend(2);
  std::unique_ptr<engine::CudaBackend> gpu = cuda_backend_or_die();
  for (const Combo& k : combos()) {
    SCOPED_TRACE(k.family + " " + k.weights + " kv " + k.kv);
    Result<ModelConfig> c = widened(k.family);
    ASSERT_TRUE(c.ok()) << k.family << ": " << c.message();
    Result<std::vector<float>> want = run(*cpu, *c, k.weights, k.kv);
    ASSERT_TRUE(want.ok()) << want.message();
    Result<std::vector<float>> got = run(*gpu, *c, k.weights, k.kv);
    ASSERT_TRUE(got.ok()) << got.message();
    const double tol = weight_tol(k.weights) + (k.kv == "f32" || k.kv == "f16" ? 0.0 : kTolLogitsQuantizedKv);
    const double err = rel_rms(*got, *want);
    EXPECT_LE(err, tol) << k.family << " " << k.weights << " kv " << k.kv << ": relative RMS " << err;
  }
  EXPECT_EQ(gpu->memory_account().live[static_cast<size_t>(engine::MemoryUse::kWeights)], 0u)
      << "every model's weights were freed with it";
}

// 24 decode steps of two sequences on a paged cache of 8-slot pages:
// every step's logits, and what the model's recorded steps did.
struct Decoded {
  std::vector<float> logits;
  int64_t launches = 0, recordings = 0;
  std::string failure;
};
Result<Decoded> decode(engine::Backend& b, const ModelConfig& c, const std::string& wf, bool record) {
  Result<std::unique_ptr<engine::WeightSource>> w = engine::open_synthetic_weights(c, 7);
  if (!w) return w.error();
  Result<engine::LoadOptions> o = engine::load_options(wf);
  if (!o) return o.error();
  o->record_decode_steps = record;
  Result<std::unique_ptr<Model>> m = Model::load(**w, b, *o);
  if (!m) return m.error();
  engine::KvCacheOptions kv;
  kv.page_tokens = 8;
  Result<std::unique_ptr<KvCache>> cache = (*m)->make_cache(kv, 2);
  if (!cache) return cache.error();
  const int64_t V = c.vocab_size;
  std::vector<int32_t> a = {3, 1, 4, 1, 5}, bb = {2, 7, 1, 8, 2, 8, 1, 8, 2};
  const SequenceStep prefill[2] = {{0, a}, {1, bb}};
  std::vector<float> part;
  if (Status s = (*m)->forward(prefill, **cache, LogitsMode::kLast, &part); !s.ok()) return s.error();
  Decoded d;
  int32_t next[2] = {0, 0};
  for (int step = 0; step < 24; ++step) {
    // Fixed tokens, not the argmax: two backends' near-ties must not send the
    // sequences apart.
    for (int i = 0; i < 2; ++i) next[i] = static_cast<int32_t>((step * 17 + i * 29 + 3) % V);
    const SequenceStep steps[2] = {{0, {&next[0], 1}}, {1, {&next[1], 1}}};
    if (Status s = (*m)->forward(steps, **cache, LogitsMode::kLast, &part); !s.ok()) return s.error();
    d.logits.insert(d.logits.end(), part.begin(), part.end());
  }
  d.launches = (*m)->recorded_steps().launches();
  d.recordings = (*m)->recorded_steps().recordings();
  d.failure = (*m)->recorded_steps().last_failure();
  return d;
}

// Decode steps launched from CUDA graphs (Model's RecordedSteps: recorded by stream
// capture, launched with the host arrays copied into the graph's pinned arena) give
// the logits of the steps enqueued op by op, and of the CPU backend; most steps are
// launches, a new recording after each page.
TEST(CudaModelLogits, RecordedDecodeStepsAgreeWithEagerOnesAndTheCpu) {
  GB_REQUIRE_GPU();
  std::unique_ptr<engine::Backend> cpu = engine::make_cpu_backend(2);
  std::unique_ptr<engine::CudaBackend> gpu = cuda_backend_or_die();
  Result<ModelConfig> c = widened("llama_gqa");
  ASSERT_TRUE(c.ok()) << c.message();
  for (const std::string wf : {"bf16", "q4_0"}) {
    SCOPED_TRACE(wf);
    Result<Decoded> want = decode(*cpu, *c, wf, false);
    Result<Decoded> eager = decode(*gpu, *c, wf, false);
    Result<Decoded> recorded = decode(*gpu, *c, wf, true);
    ASSERT_TRUE(want.ok() && eager.ok() && recorded.ok());
    EXPECT_TRUE(recorded->failure.empty()) << recorded->failure;
    EXPECT_GE(recorded->launches, 12) << "of 24 steps";
    EXPECT_GE(recorded->recordings, 2);
    EXPECT_EQ(eager->launches, 0);
    // The recorded steps' attention runs over every slot allocated (the bound views),
    // the eager ones' over the slots used: the same sums split differently.
    EXPECT_LE(rel_rms(recorded->logits, eager->logits), 1e-5);
    EXPECT_LE(rel_rms(recorded->logits, want->logits), weight_tol(wf));
  }
}

}  // namespace
}  // namespace gb::testing

// The CPU engine against the reference implementation: tiny random models of every
// family in Hugging Face layout, and their logits and greedy generations computed
// by transformers (tools/gen_golden_logits.py, stored in tests/data/golden); and
// llama.cpp's own f16 GGUF file against transformers on the same weights
// (tools/gen_peer_gguf_logits.py; the GGUF is in ../shared/peers, skipped without it).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "engine/backend/backend.h"
#include "engine/model/generate.h"
#include "engine/measure/measures.h"
#include "engine/model/model.h"
#include "engine/weights/hf/safetensors.h"
#include "engine/weights/weight_source.h"
#include "engine/backend/cpu_backend.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;
const std::string kGolden = std::string(GB_SOURCE_DIR) + "/tests/data/golden";
const std::string kShared = std::string(GB_SOURCE_DIR) + "/../shared";

struct Reference {
  std::vector<int32_t> ids;  // [batch, seq]
  int64_t batch = 0, seq = 0;
  std::vector<float> logits;  // [batch, seq, vocab]
};

Reference read_reference(const std::string& path) {
  Reference r;
  auto f = SafetensorsFile::open(path);
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
  if (!f.ok()) return r;
  const SafetensorsEntry* ids = (*f)->find("input_ids");
  const SafetensorsEntry* logits = (*f)->find("logits");
  EXPECT_TRUE(ids && logits);
  if (!ids || !logits) return r;
  const TensorView iv = (*f)->view(*ids);
  EXPECT_EQ(iv.dtype, DType::kI64);
  r.batch = iv.shape[0];
  r.seq = iv.shape[1];
  for (int64_t i = 0; i < iv.numel(); ++i) {
    int64_t v;
    std::memcpy(&v, iv.bytes() + 8 * i, 8);
    r.ids.push_back(static_cast<int32_t>(v));
  }
  r.logits = to_f32((*f)->view(*logits));
  return r;
}

double rel_err(const std::vector<float>& ours, const std::vector<float>& theirs) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    num = std::max(num, std::abs(double{ours[i]} - theirs[i]));
    den = std::max(den, std::abs(double{theirs[i]}));
  }
  return num / den;
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, LogitsMatchTransformers) {
  const std::string dir = kGolden + "/" + GetParam();
  auto w = open_weights("hf:" + dir);
  ASSERT_TRUE(w.ok()) << w.error().message;
  auto backend = make_cpu_backend(2);
  auto model = Model::load(**w, *backend);
  ASSERT_TRUE(model.ok()) << model.error().message;
  const Reference ref = read_reference(dir + "/golden.safetensors");
  ASSERT_EQ(ref.batch, 2);
  const int64_t V = (*model)->config().vocab_size;
  ASSERT_EQ(static_cast<int64_t>(ref.logits.size()), ref.batch * ref.seq * V);

  // Both sequences in one batched forward pass.
  auto cache = (*model)->make_cache({}, 2);
  ASSERT_TRUE(cache.ok());
  std::vector<SequenceStep> steps;
  for (int64_t b = 0; b < ref.batch; ++b)
    steps.push_back({static_cast<int>(b), std::span<const int32_t>(ref.ids).subspan(b * ref.seq, ref.seq)});
  std::vector<float> logits;
  ASSERT_TRUE((*model)->forward(steps, **cache, LogitsMode::kAll, &logits).ok());
  const double err = rel_err(logits, ref.logits);
  EXPECT_LT(err, 1e-4) << GetParam();
  RecordProperty("rel_err", std::to_string(err));

  // Greedy generation: the same tokens as transformers' generate().
  std::ifstream in(dir + "/golden_generate.json");
  const nlohmann::json g = nlohmann::json::parse(in);
  const std::vector<int32_t> prompt = g["prompt"].get<std::vector<int32_t>>();
  const std::vector<int32_t> want = g["generated"].get<std::vector<int32_t>>();
  auto gen_cache = (*model)->make_cache({}, 1);
  ASSERT_TRUE(gen_cache.ok());
  GenerateOptions o;
  o.max_new_tokens = static_cast<int64_t>(want.size());
  auto r = generate(**model, **gen_cache, 0, prompt, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tokens, want) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Families, Golden,
                         ::testing::Values("llama_gqa", "llama_mqa_headdim", "llama3_rope", "llama_linear_rope",
                                           "mistral", "qwen2", "qwen3", "gpt_neox", "gpt_neox_serial", "gpt2"));

TEST(GoldenPeerGguf, LlamaCppF16FileMatchesTransformersOnTheSameWeights) {
  const std::string gguf = kShared + "/peers/llama-gguf/peer-llama-f16.gguf";
  if (!fs::exists(gguf)) GTEST_SKIP() << gguf << " is absent (this test needs ../shared beside the repository)";
  auto w = open_weights("gguf:" + gguf);
  ASSERT_TRUE(w.ok()) << w.error().message;
  auto backend = make_cpu_backend(2);
  auto model = Model::load(**w, *backend);
  ASSERT_TRUE(model.ok()) << model.error().message;
  const Reference ref = read_reference(std::string(GB_SOURCE_DIR) +
                                       "/tests/data/peer_gguf/peer_llama_f16_logits.safetensors");
  auto cache = (*model)->make_cache({}, 1);
  ASSERT_TRUE(cache.ok());
  SequenceStep s{0, ref.ids};
  std::vector<float> logits;
  ASSERT_TRUE((*model)->forward({&s, 1}, **cache, LogitsMode::kAll, &logits).ok());
  ASSERT_EQ(logits.size(), ref.logits.size());
  EXPECT_LT(rel_err(logits, ref.logits), 1e-4);
}

}  // namespace
}  // namespace gb::engine

namespace gb::engine {
namespace {

// llama-perplexity's arithmetic on llama.cpp's own f16 file, tokenized with the
// tokenizer embedded in the GGUF: the same token count and perplexity as
// transformers on the same weights with the peer tokenizer.json.
TEST(GoldenPeerGguf, PerplexityWithTheEmbeddedTokenizerMatchesTransformers) {
  const std::string gguf = kShared + "/peers/llama-gguf/peer-llama-f16.gguf";
  if (!fs::exists(gguf)) GTEST_SKIP() << gguf << " is absent (this test needs ../shared beside the repository)";
  std::ifstream in(std::string(GB_SOURCE_DIR) + "/tests/data/peer_gguf/peer_llama_f16_ppl.json");
  const nlohmann::json want = nlohmann::json::parse(in);
  std::ifstream corpus(std::string(GB_SOURCE_DIR) + "/tests/data/corpus/opticks-book1-part1.txt", std::ios::binary);
  std::string text(want["text_bytes"].get<size_t>(), '\0');
  corpus.read(text.data(), static_cast<std::streamsize>(text.size()));
  const fs::path file = fs::temp_directory_path() / ("gb_peer_ppl_" + std::to_string(::getpid()) + ".txt");
  std::ofstream(file, std::ios::binary) << text;

  auto w = open_weights("gguf:" + gguf);
  ASSERT_TRUE(w.ok()) << w.error().message;
  ASSERT_NE((*w)->tokenizer(), nullptr);
  const std::vector<int32_t> ids = (*w)->tokenizer()->encode(text);
  EXPECT_EQ(static_cast<int64_t>(ids.size()), want["tokens"].get<int64_t>());
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + 32), want["first_ids"].get<std::vector<int32_t>>());

  const MeasureFn* ppl = find_measure("ppl");
  ASSERT_NE(ppl, nullptr);
  Result<JobOutput> out = (*ppl)({{"model", "gguf:" + gguf},
                                    {"dataset", "text:" + file.string()},
                                    {"context", want["context"]},
                                    {"batch_size", 2}},
                                   nullptr);
  fs::remove(file);
  ASSERT_TRUE(out.ok()) << out.error().message;
  auto value = [&](const std::string& name) {
    for (const Metric& m : out->metrics)
      if (m.name == name && m.value) return *m.value;
    return std::nan("");
  };
  EXPECT_EQ(value("tokens_scored"), want["tokens_scored"].get<double>());
  EXPECT_NEAR(value("nll_mean"), want["nll_mean"].get<double>(), 1e-5);
  EXPECT_NEAR(value("ppl") / want["ppl"].get<double>(), 1.0, 1e-4);
}

}  // namespace
}  // namespace gb::engine

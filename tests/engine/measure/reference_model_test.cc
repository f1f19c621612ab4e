// The trained reference model (tests/data/reference_model, made by
// tools/train_reference_model.py) through the engine: its perplexity on a slice of
// its held-out text in both ppl modes, and its greedy continuation of a prompt,
// against the values transformers computed on the same stored files
// (reference_eval.json). Not a test of the model's quality beyond a bound that an
// untrained model could not meet.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <unistd.h>

#include "engine/measure/engine_session.h"
#include "engine/measure/measures.h"
#include "engine/model/generate.h"
#include "engine/tokenizer/tokenizer.h"

namespace gb::engine {
namespace {
namespace reference_model_test {

namespace fs = std::filesystem;
const std::string kDir = std::string(GB_SOURCE_DIR) + "/tests/data/reference_model";

Json eval_json() {
  std::ifstream in(kDir + "/reference_eval.json");
  return Json::parse(in);
}

double value_of(const JobOutput& o, const std::string& name) {
  for (const Metric& m : o.metrics)
    if (m.name == name && m.value) return *m.value;
  ADD_FAILURE() << "no metric " << name;
  return NAN;
}

// The first `bytes` of heldout.txt, as a text: dataset file.
std::string heldout_prefix_file(size_t bytes) {
  std::ifstream in(kDir + "/heldout.txt", std::ios::binary);
  std::string text(bytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(bytes));
  EXPECT_EQ(static_cast<size_t>(in.gcount()), bytes);
  const std::string path =
      (fs::temp_directory_path() / ("gb_refmodel_" + std::to_string(::getpid()) + ".txt")).string();
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

Result<JobOutput> run(const std::string& kind, const Json& params) {
  const MeasureFn* k = find_measure(kind);
  EXPECT_NE(k, nullptr);
  if (Status s = check_job(kind, params); !s.ok()) return s.error();
  return (*k)(params, nullptr);
}

// Tolerances: both sides compute in f32 from the same bf16 weights (widened
// exactly); what differs is the order of the sums, worth ~1e-6 per logit.
constexpr double kNllTol = 2e-5;     // nats, on the mean NLL
constexpr double kPplRelTol = 2e-5;  // relative, on the perplexity

TEST(ReferenceModel, PerplexityOnHeldOutSliceMatchesTransformers) {
  const Json ev = eval_json();
  const Json& slice = ev["heldout_slice"];
  const std::string text = heldout_prefix_file(slice["text_bytes"].get<size_t>());
  for (const Json& want : slice["results"]) {
    Json p = {{"model", "hf:" + kDir},
              {"dataset", "text:" + text},
              {"tokenizer", kDir + "/tokenizer.json"},
              {"context", want["context"]},
              {"ppl_mode", want["mode"]},
              {"batch_size", 2},
              {"threads", 2}};
    if (want.contains("stride")) p["stride"] = want["stride"];
    Result<JobOutput> out = run("ppl", p);
    ASSERT_TRUE(out.ok()) << out.error().message;
    const std::string where = want["mode"].get<std::string>();
    // The same tokens: gridbench's tokenizer reads the stored tokenizer.json as `tokenizers` does.
    EXPECT_EQ(value_of(*out, "dataset_tokens"), slice["tokens"].get<double>()) << where;
    EXPECT_EQ(value_of(*out, "tokens_scored"), want["tokens_scored"].get<double>()) << where;
    EXPECT_NEAR(value_of(*out, "nll_mean"), want["nll_mean"].get<double>(), kNllTol) << where;
    EXPECT_NEAR(value_of(*out, "ppl") / want["ppl"].get<double>(), 1.0, kPplRelTol) << where;
    // A trained model: an untrained one scores about the vocabulary size (4096); the
    // stored one about 220 (README.md there).
    EXPECT_LT(value_of(*out, "ppl"), 1000.0) << where;
  }
  fs::remove(text);
}

TEST(ReferenceModel, GreedyContinuationMatchesTransformers) {
  const Json g = eval_json()["greedy"];
  Result<Tokenizer> tok = Tokenizer::from_file(kDir + "/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const std::vector<int32_t> prompt = tok->encode(g["prompt"].get<std::string>(), true);
  EXPECT_EQ(prompt, g["prompt_ids"].get<std::vector<int32_t>>());
  Result<EngineSession> e = open_engine_session({{"model", "hf:" + kDir}, {"threads", 2}});
  ASSERT_TRUE(e.ok()) << e.error().message;
  auto cache = e->model->make_cache(e->kv, 1);
  ASSERT_TRUE(cache.ok()) << cache.error().message;
  const std::vector<int32_t> want = g["generated_ids"].get<std::vector<int32_t>>();
  GenerateOptions o;
  o.max_new_tokens = static_cast<int64_t>(want.size());
  Result<GenerateResult> r = generate(*e->model, **cache, 0, prompt, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tokens, want);
  EXPECT_EQ(tok->decode(r->tokens), g["generated_text"].get<std::string>());
}

// The activation-quantized formats through the ppl and memory kinds end to end on
// the reference model: perplexity within a named budget of f32's, and the device
// record says what the activations were. Measured (context 64, 4 chunks): f32
// 61.285; w8a8-int8 61.270, w8a8-fp8 61.218, int8-llm 61.294, w8a8-int8+smooth
// 61.255 (at most 0.11% away).
constexpr double kMaxW8A8PplRelChange = 0.01;

TEST(ReferenceModel, ActivationQuantizedFormatsRunPplAndMemoryJobs) {
  const std::string text = heldout_prefix_file(4000);
  auto ppl = [&](const std::string& format, Json extra) -> std::pair<double, std::string> {
    Json p = {{"model", "hf:" + kDir}, {"dataset", "text:" + text}, {"context", 64}, {"chunks", 4}, {"threads", 2},
            {"tokenizer", kDir + "/tokenizer.json"}};
    if (!format.empty()) p["weight_format"] = format;
    if (extra.is_object()) p.update(extra);
    Result<JobOutput> out = run("ppl", p);
    EXPECT_TRUE(out.ok()) << format << ": " << out.error().message;
    if (!out.ok()) return {NAN, ""};
    return {value_of(*out, "ppl"), out->device.value("activations", "")};
  };
  const double f32 = ppl("", {}).first;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"w8a8-int8", "int8 per token"},
      {"w8a8-fp8", "fp8 per token"},
      {"int8-llm", "llm.int8 threshold 6"},
      {"w8a8-int8+smooth", "int8 per token, smoothquant alpha 0.5, calibrated on 2 sequences of 256 tokens of text:"}};
  for (const auto& [format, mode] : cases) {
    const auto [v, activations] = ppl(format, {{"smooth_samples", 2}});
    std::printf("reference model ppl (context 64, 4 chunks): f32 %.4f, %s %.4f\n", f32, format.c_str(), v);
    EXPECT_NEAR(v / f32, 1.0, kMaxW8A8PplRelChange) << format;
    EXPECT_NE(v, f32) << format;
    EXPECT_EQ(activations.substr(0, mode.size()), mode) << format;
  }
  // llm_int8_threshold reaches the kernels: at 0.001 every column is an outlier, so
  // the activations stay f32 and the result is the int8 weights' alone.
  EXPECT_EQ(ppl("int8-llm", {{"llm_int8_threshold", 0.001}}).second, "llm.int8 threshold 0.001");
  Result<JobOutput> mem =
      run("memory", {{"model", "hf:" + kDir}, {"weight_format", "w8a8-int8+smooth"}, {"context", 32}, {"threads", 2},
                     {"smooth_samples", 1}});
  ASSERT_TRUE(mem.ok()) << mem.error().message;
  EXPECT_NE(mem->device.value("activations", "").find("seeded random tokens"), std::string::npos)
      << mem->device.dump();
  Result<JobOutput> f32mem = run("memory", {{"model", "hf:" + kDir}, {"context", 32}, {"threads", 2}});
  ASSERT_TRUE(f32mem.ok());
  EXPECT_LT(value_of(*mem, "loaded_weight_bytes"), value_of(*f32mem, "loaded_weight_bytes"));
  fs::remove(text);
}

// Section 7's KL divergence: the mean KL(f32 || format) of next-token
// distributions over a held-out slice (as llama.cpp's --kl-divergence reports it),
// ordered as the formats' precision suggests. Deterministic (the stored model, a
// fixed text), so an ordering flips only when the figures are close: measured over
// 96 tokens f16 3.9e-14, q8_0 1.42e-6, int8-channel 1.95e-6, q6_k 1.13e-5, q4_k
// 2.0e-4, int4-g32 2.6e-4, int4-g128 4.8e-4, int4-g256 4.6e-4 (w8a8-int8 3.4e-5,
// int8-llm 1.3e-5). int4-g128 and int4-g256 are within 5% of each other (over 256
// tokens g128 4.223e-4, g256 4.228e-4): that ordering is not robust on this model,
// whose rows are 256 and 768 long, and is not asserted; g32 < g128 < g256 is
// asserted as g32 < g128 and g32 < g256.
constexpr size_t kKlTokens = 96;

TEST(ReferenceModel, KlDivergenceFromF32FollowsPrecision) {
  Result<Tokenizer> tok = Tokenizer::from_file(kDir + "/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  std::ifstream in(kDir + "/heldout.txt", std::ios::binary);
  std::string text(3000, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  std::vector<int32_t> ids = tok->encode(text, false);
  ASSERT_GE(ids.size(), kKlTokens);
  ids.resize(kKlTokens);
  auto log_probs = [&](const std::string& format) {
    Result<EngineSession> e = open_engine_session({{"model", "hf:" + kDir}, {"weight_format", format}, {"threads", 2}});
    EXPECT_TRUE(e.ok()) << format << ": " << e.error().message;
    std::vector<double> lp;
    if (!e.ok()) return lp;
    auto cache = e->model->make_cache(e->kv, 1);
    const SequenceStep step{0, ids};
    std::vector<float> logits;
    EXPECT_TRUE(e->model->forward({&step, 1}, **cache, LogitsMode::kAll, &logits).ok());
    const size_t V = static_cast<size_t>(e->model->config().vocab_size);
    lp.resize(logits.size());
    for (size_t r = 0; r < ids.size(); ++r) {
      double mx = -1e300, z = 0;
      for (size_t v = 0; v < V; ++v) mx = std::max(mx, double{logits[r * V + v]});
      for (size_t v = 0; v < V; ++v) z += std::exp(logits[r * V + v] - mx);
      for (size_t v = 0; v < V; ++v) lp[r * V + v] = logits[r * V + v] - mx - std::log(z);
    }
    return lp;
  };
  const std::vector<double> ref = log_probs("f32");
  std::map<std::string, double> kl;
  for (const std::string f : {"f16", "q8_0", "int8-channel", "q6_k", "q4_k", "int4-g32", "int4-g128", "int4-g256",
                              "w8a8-int8", "int8-llm"}) {
    const std::vector<double> lp = log_probs(f);
    ASSERT_EQ(lp.size(), ref.size()) << f;
    double sum = 0;
    for (size_t i = 0; i < ref.size(); ++i) sum += std::exp(ref[i]) * (ref[i] - lp[i]);
    kl[f] = sum / static_cast<double>(ids.size());
    std::printf("KL(f32 || %s) = %.3e nats per token (%zu tokens of heldout.txt)\n", f.c_str(), kl[f], kKlTokens);
  }
  EXPECT_LT(kl["f16"], kl["q8_0"]);
  EXPECT_LT(kl["q8_0"], kl["q6_k"]);
  EXPECT_LT(kl["int8-channel"], kl["q6_k"]);
  EXPECT_LT(kl["q6_k"], kl["q4_k"]);
  EXPECT_LT(kl["q8_0"], kl["int8-channel"]);
  EXPECT_LT(kl["int4-g32"], kl["int4-g128"]);
  EXPECT_LT(kl["int4-g32"], kl["int4-g256"]);
}

}  // namespace reference_model_test
}  // namespace
}  // namespace gb::engine

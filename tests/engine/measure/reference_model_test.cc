// The trained reference model (tests/data/reference_model, made by
// tools/train_reference_model.py) through the engine: its perplexity on a slice of
// its held-out text in both ppl modes, and its greedy continuation of a prompt,
// against the values transformers computed on the same stored files
// (reference_eval.json). Not a test of the model's quality beyond a bound that an
// untrained model could not meet.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "engine/measure/engine_session.h"
#include "engine/measure/measures.h"
#include "engine/model/generate.h"
#include "engine/tokenizer/tokenizer.h"

namespace gb::engine {
namespace {

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

}  // namespace
}  // namespace gb::engine

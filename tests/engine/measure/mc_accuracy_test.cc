// mc_accuracy: the scoring arithmetic against a hand-scored set (a ScoringModel
// whose log-likelihoods and generations the test chooses), the prompts against the
// strings tools/gen_mc_loglik_expected.py builds independently, the engine's
// per-choice log-likelihoods against transformers' (the reference model through its
// tokenizer, a golden model by token ids), prefix reuse against fresh runs, and the
// reference model's multiple-choice set against the accuracy its README states.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>

#include "engine/jobs/datasets/mmlu.h"
#include "engine/measure/evals/engine_scoring_model.h"
#include "engine/measure/evals/mc_eval.h"
#include "engine/measure/engine_session.h"
#include "engine/measure/measures.h"
#include "engine/backend/cpu_backend.h"
#include "engine/weights/weight_source.h"

namespace gb::engine {
namespace {
namespace mc_accuracy_test {

const std::string kData = std::string(GB_SOURCE_DIR) + "/tests/data";

// Per-question figures for the sample set tests/data/datasets/mmlu (shots from dev).
struct Planned {
  std::vector<double> letter;    // log p(" A".." D")
  std::string generated;         // the greedy text
  std::vector<double> per_byte;  // choice_text: log p(" " + choice) = -per_byte x bytes(" " + choice)
};

class FakeModel : public ScoringModel {
 public:
  explicit FakeModel(std::map<std::string, Planned> plan) : plan_(std::move(plan)) {}
  Result<std::vector<double>> loglikelihoods(const std::string& context,
                                             const std::vector<std::string>& conts) override {
    contexts.push_back(context);
    const Planned& p = find(context);
    if (conts == std::vector<std::string>{" A", " B", " C", " D"}) return p.letter;
    std::vector<double> out;
    for (size_t j = 0; j < conts.size(); ++j) out.push_back(-p.per_byte[j] * static_cast<double>(conts[j].size()));
    return out;
  }
  Result<Generation> greedy(const std::string& prompt, int64_t, const std::function<bool(const std::string&)>&) override {
    prompts.push_back(prompt);
    return Generation{find(prompt).generated, 1};
  }
  std::vector<std::string> contexts, prompts;

 private:
  // The question asked is the planned one whose text comes last in the context.
  const Planned& find(const std::string& context) const {
    const Planned* best = nullptr;
    size_t at = 0;
    for (const auto& [q, p] : plan_) {
      const size_t pos = context.rfind(q);
      if (pos != std::string::npos && (best == nullptr || pos > at)) best = &p, at = pos;
    }
    EXPECT_NE(best, nullptr) << context;
    return *best;
  }
  std::map<std::string, Planned> plan_;
};

std::map<std::string, Planned> hand_scored_plan() {
  return {
      // optics 1, answer B " refraction": letter B right; generate "b)" right; per byte
      // .5 .2 .3 .9: norm B right, sums 5.5 2.2 3.6 9.9: B right.
      {"Light bending as it enters glass is called", {{-3, -1, -2, -4}, " b) refraction", {0.5, 0.2, 0.3, 0.9}}},
      // optics 2, answer B " Opticks" (8 bytes; A 10, C 12, D 19): letter A wrong; "B"
      // right; per byte 1 1.1 .95 .6: norm D wrong, sums 10 8.8 11.4 11.4: B right.
      {"which book holds it?", {{-1, -2, -3, -4}, "\n\n  B", {1.0, 1.1, 0.95, 0.6}}},
      // optics 3, answer C " red" (4; A 7, B 6, D 5): letter C right; nothing generated:
      // wrong; per byte .3 .6 .5 .9: norm A wrong, sums 2.1 3.6 2.0 4.5: C right.
      {"A rainbow's colours", {{-2, -2, -1, -3}, "", {0.3, 0.6, 0.5, 0.9}}},
      // scripture 1, answer C: letters tie, the first (A) wins: wrong; " c." right; all
      // choices 3 bytes and tied: A, wrong both ways.
      {"How many books has the King James Bible?", {{-1, -1, -1, -1}, " c.", {0.7, 0.7, 0.7, 0.7}}},
      // scripture 2, answer A " Moses" (6; B 6, C 5, D 8): letter A right; "a" right;
      // per byte .5 .9 .55 .9: norm A right, sums 3.0 5.4 2.75 7.2: C wrong.
      {"Who led Israel out of Egypt?", {{-0.5, -1, -1, -1}, "a", {0.5, 0.9, 0.55, 0.9}}},
  };
}

TEST(McEval, HandScoredSetGivesTheAccuraciesWorkedOutByHand) {
  Result<std::vector<McSubject>> subjects = load_mmlu(kData + "/datasets/mmlu");
  ASSERT_TRUE(subjects.ok()) << subjects.message();
  FakeModel fake(hand_scored_plan());
  McOptions o;
  o.shots = 1;
  Result<McResult> r = run_mc(*subjects, o, fake);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(r->subjects.size(), 2u);
  const McTally& optics = r->subjects[0].tally;
  const McTally& scripture = r->subjects[1].tally;
  EXPECT_EQ(r->subjects[0].subject, "optics");
  EXPECT_EQ(optics.n, 3);
  EXPECT_EQ(optics.letter, 2);
  EXPECT_EQ(optics.generate, 2);
  EXPECT_EQ(optics.choice_text, 1);
  EXPECT_EQ(optics.choice_sum, 3);
  EXPECT_EQ(scripture.n, 2);
  EXPECT_EQ(scripture.letter, 1);
  EXPECT_EQ(scripture.generate, 2);
  EXPECT_EQ(scripture.choice_text, 1);
  EXPECT_EQ(scripture.choice_sum, 0);
  EXPECT_EQ(r->overall.n, 5);
  EXPECT_EQ(r->overall.letter, 3);       // 0.6
  EXPECT_EQ(r->overall.generate, 4);     // 0.8
  EXPECT_EQ(r->overall.choice_text, 2);  // 0.4
  EXPECT_EQ(r->overall.choice_sum, 3);   // 0.6
  EXPECT_NEAR(accuracy_stderr(0.4, 5), std::sqrt(0.4 * 0.6 / 5), 1e-15);
  EXPECT_NEAR(accuracy_stderr(0.4, 5), 0.2190890230, 1e-9);

  // The letter and generate prompt of the first question, as the MMLU harness writes it.
  ASSERT_FALSE(fake.prompts.empty());
  EXPECT_EQ(fake.prompts[0],
            "The following are multiple choice questions (with answers) about optics.\n\n"
            "What does a prism do to white light?\nA. It absorbs it\nB. It splits it into colours\n"
            "C. It makes it brighter\nD. Nothing\nAnswer: B\n\n"
            "Light bending as it enters glass is called\nA. reflection\nB. refraction\nC. diffraction\n"
            "D. absorption\nAnswer:");
  EXPECT_EQ(fake.contexts[0], fake.prompts[0]);  // letter scoring reads the same prompt
  EXPECT_EQ(fake.contexts[1],
            "The following are multiple choice questions (with answers) about optics.\n\n"
            "What does a prism do to white light?\nAnswer: It splits it into colours\n\n"
            "Light bending as it enters glass is called\nAnswer:");

  // limit: the first question of each subject only; one mode only.
  FakeModel again(hand_scored_plan());
  o.limit = 1;
  o.generate = o.choice_text = false;
  Result<McResult> one = run_mc(*subjects, o, again);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->overall.n, 2);
  EXPECT_EQ(one->overall.letter, 1);  // optics 1 right, scripture 1 a tie (A) against C
  EXPECT_TRUE(again.prompts.empty());

  // More shots than a subject's dev split holds.
  o.shots = 3;
  Result<McResult> too_many = run_mc(*subjects, o, again);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.message().find("subject optics: 3 shots asked, but its dev split has 2 questions"),
            std::string::npos)
      << too_many.message();
}

Json expected() {
  std::ifstream in(kData + "/evals/mc_loglik_expected.json");
  return Json::parse(in);
}

struct Loaded {
  std::unique_ptr<WeightSource> weights;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<KvCache> cache;
};

Loaded load(const std::string& dir, KvCacheOptions kv = {}) {
  Loaded l;
  Result<std::unique_ptr<WeightSource>> w = open_weights("hf:" + dir);
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.message());
  l.weights = std::move(*w);
  l.backend = make_cpu_backend(1);
  Result<std::unique_ptr<Model>> m = Model::load(*l.weights, *l.backend);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.message());
  l.model = std::move(*m);
  Result<std::unique_ptr<KvCache>> c = l.model->make_cache(kv, 1);
  EXPECT_TRUE(c.ok());
  l.cache = std::move(*c);
  return l;
}

// Sums over up to ~40 tokens of f32 logits against float64 ones from a different
// summation order: the per-token differences are ~1e-5 nats.
constexpr double kMaxLoglikDiff = 2e-3;

TEST(McEval, PromptsAndChoiceLoglikelihoodsEqualTransformers) {
  const Json ex = expected();
  Result<std::vector<McSubject>> subjects = load_mmlu(kData + "/reference_model/mc");
  ASSERT_TRUE(subjects.ok()) << subjects.message();
  ASSERT_EQ(subjects->size(), 1u);
  const McSubject& s = (*subjects)[0];
  Loaded l = load(kData + "/reference_model");
  EngineScoringModel lm(*l.model, l.weights->tokenizer(), *l.cache);
  for (const Json& c : ex["reference_model"]["cases"]) {
    const McQuestion& q = s.test[c["question"].get<size_t>()];
    const std::string form = c["form"];
    const std::string context = form == "letter"             ? mmlu_prompt(s.name, {}, q)
                                : form == "choice_text_mmlu" ? choice_text_context(s.name, {s.dev[0]}, q, false)
                                                             : choice_text_context(s.name, {}, q, true);
    ASSERT_EQ(context, c["context"].get<std::string>()) << form << " " << c["question"];
    std::vector<std::string> conts;
    for (const Json& x : c["continuations"]) conts.push_back(x["text"]);
    Result<std::vector<double>> ll = lm.loglikelihoods(context, conts);
    ASSERT_TRUE(ll.ok()) << ll.message();
    for (size_t j = 0; j < conts.size(); ++j)
      EXPECT_NEAR((*ll)[j], c["continuations"][j]["loglik"].get<double>(), kMaxLoglikDiff)
          << form << " question " << c["question"] << " choice " << j;
  }
  EXPECT_EQ(lm.truncated(), 0);

  // A golden model without a tokenizer, by token ids.
  const Json& g = ex["golden_llama_gqa"];
  Loaded gl = load(kData + "/golden/llama_gqa");
  EngineScoringModel glm(*gl.model, nullptr, *gl.cache);
  std::vector<std::vector<int32_t>> conts;
  for (const Json& x : g["continuations"]) conts.push_back(x["ids"].get<std::vector<int32_t>>());
  Result<std::vector<double>> ll = glm.loglikelihoods_ids(g["context"].get<std::vector<int32_t>>(), conts);
  ASSERT_TRUE(ll.ok()) << ll.message();
  for (size_t j = 0; j < conts.size(); ++j)
    EXPECT_NEAR((*ll)[j], g["continuations"][j]["loglik"].get<double>(), 1e-4) << "golden continuation " << j;
}

TEST(McEval, PrefixReuseGivesWhatFreshRunsGive) {
  Result<std::vector<McSubject>> subjects = load_mmlu(kData + "/reference_model/mc");
  ASSERT_TRUE(subjects.ok());
  const McSubject& s = (*subjects)[0];
  Loaded shared = load(kData + "/reference_model");
  EngineScoringModel lm(*shared.model, shared.weights->tokenizer(), *shared.cache);
  int64_t fresh_tokens = 0;
  for (size_t i = 0; i < 3; ++i) {
    const McQuestion& q = s.test[i];
    std::vector<std::string> conts;
    for (const std::string& c : q.choices) conts.push_back(" " + c);
    const std::string context = choice_text_context(s.name, {s.dev[0]}, q, false);
    Result<std::vector<double>> reused = lm.loglikelihoods(context, conts);
    Result<Generation> gen = lm.greedy(mmlu_prompt(s.name, {}, q), 4, nullptr);
    ASSERT_TRUE(reused.ok() && gen.ok());
    for (size_t j = 0; j < 4; ++j) {
      Loaded f = load(kData + "/reference_model");
      EngineScoringModel one(*f.model, f.weights->tokenizer(), *f.cache);
      Result<std::vector<double>> alone = one.loglikelihoods(context, {conts[j]});
      ASSERT_TRUE(alone.ok());
      fresh_tokens += one.forwarded_tokens();
      EXPECT_NEAR((*reused)[j], (*alone)[0], 1e-9) << "question " << i << " choice " << j;
    }
    Loaded f = load(kData + "/reference_model");
    EngineScoringModel one(*f.model, f.weights->tokenizer(), *f.cache);
    Result<Generation> fresh_gen = one.greedy(mmlu_prompt(s.name, {}, q), 4, nullptr);
    ASSERT_TRUE(fresh_gen.ok());
    EXPECT_EQ(gen->text, fresh_gen->text);
  }
  // The shared header and shot ran once, and each context once for its four choices.
  EXPECT_LT(lm.forwarded_tokens() * 2, fresh_tokens);
}

// KvCache::truncate, what the prefix reuse rests on: going back gives the logits a
// fresh run gives; a streaming cache that has evicted refuses (and keeps its state).
TEST(McEval, CacheTruncateGoesBackToAPrefix) {
  Loaded l = load(kData + "/golden/llama_gqa");
  const std::vector<int32_t> a = {5, 17, 99, 3, 42, 7}, b = {5, 17, 99, 64, 1};
  auto step = [&](KvCache& cache, std::span<const int32_t> t) {
    std::vector<float> logits;
    const SequenceStep s{0, t};
    EXPECT_TRUE(l.model->forward(std::span<const SequenceStep>(&s, 1), cache, LogitsMode::kLast, &logits).ok());
    return logits;
  };
  step(*l.cache, a);
  EXPECT_FALSE(l.cache->truncate(0, 7));  // more than it holds
  ASSERT_TRUE(l.cache->truncate(0, 3));
  EXPECT_EQ(l.cache->length(0), 3);
  const std::vector<float> reused = step(*l.cache, std::span<const int32_t>(b).subspan(3));
  Result<std::unique_ptr<KvCache>> fresh = l.model->make_cache({}, 1);
  ASSERT_TRUE(fresh.ok());
  const std::vector<float> direct = step(**fresh, b);
  ASSERT_EQ(reused.size(), direct.size());
  for (size_t i = 0; i < reused.size(); ++i) EXPECT_NEAR(reused[i], direct[i], 1e-5) << i;

  Result<KvCacheOptions> o = kv_cache_options("f32+sink2+win4");
  ASSERT_TRUE(o.ok());
  Result<std::unique_ptr<KvCache>> streaming = l.model->make_cache(*o, 1);
  ASSERT_TRUE(streaming.ok());
  step(**streaming, std::span<const int32_t>(a).subspan(0, 4));
  EXPECT_TRUE((*streaming)->truncate(0, 4));  // nothing evicted yet: slots are positions
  const std::vector<int32_t> more = {42, 7, 11};
  step(**streaming, more);  // 7 tokens > 2 + 4: evicts
  EXPECT_FALSE((*streaming)->truncate(0, 3));
  EXPECT_EQ((*streaming)->seen(0), 7);
}

// The reference model's README: MC test (400 items, 0-shot), continuation scoring,
// acc_norm and acc as transformers gives them (reference_eval.json).
TEST(McEval, ReferenceModelSetGivesTheAccuracyItsReadmeStates) {
  std::ifstream in(kData + "/reference_model/reference_eval.json");
  const Json ref = Json::parse(in)["mc_test"]["continuation"];
  const MeasureFn* run = find_measure("mc_accuracy");
  ASSERT_NE(run, nullptr);
  const Json params = {{"model", "hf:" + kData + "/reference_model"}, {"dataset", "mmlu:" + kData + "/reference_model/mc"},
                       {"mc_mode", "choice_text"}, {"mc_prompt", "continuation"}, {"shots", 0}, {"threads", 1}};
  ASSERT_TRUE(check_job("mc_accuracy", params).ok());
  Result<JobOutput> out = (*run)(params, nullptr);
  ASSERT_TRUE(out.ok()) << out.message();
  std::map<std::string, double> m;
  for (const Metric& x : out->metrics)
    if (x.value) m[x.name] = *x.value;
  EXPECT_EQ(m["questions"], ref["items"].get<double>());
  EXPECT_DOUBLE_EQ(m["acc_choice_text"], ref["acc_norm"].get<double>());
  EXPECT_DOUBLE_EQ(m["acc_choice_sum"], ref["acc"].get<double>());
  const double p = ref["acc_norm"].get<double>(), n = ref["items"].get<double>();
  EXPECT_NEAR(m["acc_choice_text_stderr"], std::sqrt(p * (1 - p) / n), 1e-12);
  EXPECT_DOUBLE_EQ(m["acc_choice_text:kjv_continuation"], m["acc_choice_text"]);
  EXPECT_DOUBLE_EQ(m["acc_choice_text_stderr:kjv_continuation"], m["acc_choice_text_stderr"]);
  EXPECT_EQ(m["questions:kjv_continuation"], 400);
  EXPECT_EQ(m.count("acc_letter"), 0u);  // mc_mode choice_text only
}

}  // namespace mc_accuracy_test
}  // namespace
}  // namespace gb::engine

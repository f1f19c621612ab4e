// The `mc_accuracy` kind: multiple choice on an MMLU CSV directory through the
// engine (mc_eval.h says how prompts are written and scored), overall and per
// subject.
#include <algorithm>
#include <set>
#include <sstream>

#include "engine/jobs/dataset.h"
#include "engine/jobs/datasets/mmlu.h"
#include "engine/measure/evals/engine_scoring_model.h"
#include "engine/measure/evals/eval_session.h"
#include "engine/measure/evals/mc_eval.h"
#include "engine/measure/measures.h"

namespace gb::engine {
namespace {

// The subjects `list` names (comma-separated), in the directory's order.
Result<std::vector<McSubject>> pick_subjects(std::vector<McSubject> all, const std::string& list,
                                             const std::string& dir) {
  std::set<std::string> wanted;
  std::stringstream in(list);
  for (std::string s; std::getline(in, s, ',');) wanted.insert(s);
  std::vector<McSubject> out;
  for (McSubject& s : all)
    if (wanted.erase(s.name) > 0) out.push_back(std::move(s));
  if (!wanted.empty()) return Error{"subjects: '" + *wanted.begin() + "' is no subject of " + dir};
  return out;
}

}  // namespace

Result<JobOutput> run_mc_accuracy_job(const Json& params, const ProgressFn& progress) {
  Result<DatasetSpec> spec = parse_dataset_spec(params.at("dataset").get<std::string>());
  if (!spec) return spec.error();
  if (auto problem = dataset_kind_mismatch("mc_accuracy", *spec)) return Error{*problem};
  Result<std::vector<McSubject>> subjects = load_mmlu(spec->file);
  if (!subjects) return subjects.error();
  if (auto it = params.find("subjects"); it != params.end()) {
    subjects = pick_subjects(std::move(*subjects), it->get<std::string>(), spec->file);
    if (!subjects) return subjects.error();
  }
  McOptions o;
  const std::string mode = str_param(params, "mc_mode", "all");
  o.letter = mode == "all" || mode == "letter";
  o.generate = mode == "all" || mode == "generate";
  o.choice_text = mode == "all" || mode == "choice_text";
  o.continuation_prompt = str_param(params, "mc_prompt", "mmlu") == "continuation";
  o.split = str_param(params, "mc_split", "test");
  o.shots = int_param(params, "shots", 5);
  o.limit = int_param(params, "limit", 0);
  o.max_new_tokens = int_param(params, "max_new_tokens", 8);
  // Subjects without questions in the split are left out (MMLU's val/ lacks none,
  // a small set may have only test/); none at all is an error.
  subjects->erase(std::remove_if(subjects->begin(), subjects->end(),
                                 [&](const McSubject& s) { return s.split(o.split).empty(); }),
                  subjects->end());
  if (subjects->empty()) return Error{spec->file + ": no subject has " + o.split + " questions"};

  Result<EngineSession> e = open_engine_session(params);
  if (!e) return e.error();
  std::optional<Tokenizer> own;
  Result<const Tokenizer*> tok = eval_tokenizer(params, *e, own);
  if (!tok) return tok.error();
  Result<std::unique_ptr<KvCache>> cache = e->model->make_cache(e->kv, 1);
  if (!cache) return cache.error();
  EngineScoringModel lm(*e->model, *tok, **cache);
  const auto t0 = Clock::now();
  Result<McResult> r = run_mc(*subjects, o, lm, progress);
  if (!r) return r.error();
  const double eval_ms = ms_since(t0);

  JobOutput out;
  auto add_all = [&](const std::string& subject, const McTally& t) {
    if (o.letter) add_accuracy(out, "acc_letter", t.letter, t.n, subject);
    if (o.generate) add_accuracy(out, "acc_generate", t.generate, t.n, subject);
    if (o.choice_text) {
      add_accuracy(out, "acc_choice_text", t.choice_text, t.n, subject);
      add_accuracy(out, "acc_choice_sum", t.choice_sum, t.n, subject);
    }
  };
  add_all("", r->overall);
  out.metrics.push_back(value_metric("questions", static_cast<double>(r->overall.n), ""));
  out.metrics.push_back(value_metric("subjects", static_cast<double>(r->subjects.size()), ""));
  out.metrics.push_back(value_metric("truncated_prompts", static_cast<double>(lm.truncated()), ""));
  out.metrics.push_back(value_metric("eval_s", eval_ms / 1000.0, "s"));
  for (const McSubjectResult& s : r->subjects) {
    add_all(s.subject, s.tally);
    out.metrics.push_back(value_metric("questions:" + s.subject, static_cast<double>(s.tally.n), ""));
  }
  out.device = session_device_json(*e);
  return out;
}

}  // namespace gb::engine

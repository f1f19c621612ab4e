// The `gen_accuracy` kind: greedy generations on prompts with reference answers
// (jsonl:FILE:PROMPT,ANSWER), scored by exact match or gsm8k's final number
// (answer_match.h).
#include "engine/jobs/dataset.h"
#include "engine/measure/evals/answer_match.h"
#include "engine/measure/evals/engine_scoring_model.h"
#include "engine/measure/evals/eval_session.h"
#include "engine/measure/measures.h"

namespace gb::engine {

Result<JobOutput> run_gen_accuracy_job(const Json& params, const ProgressFn& progress) {
  Result<DatasetSpec> spec = parse_dataset_spec(params.at("dataset").get<std::string>());
  if (!spec) return spec.error();
  if (auto problem = dataset_kind_mismatch("gen_accuracy", *spec)) return Error{*problem};
  Result<std::vector<PromptAnswer>> rows = load_prompt_answers(*spec);
  if (!rows) return rows.error();
  if (auto it = params.find("limit"); it != params.end() && static_cast<int64_t>(rows->size()) > it->get<int64_t>())
    rows->resize(static_cast<size_t>(it->get<int64_t>()));
  if (rows->empty()) return Error{spec->file + ": no prompts"};
  const bool by_number = str_param(params, "answer_match", "exact") == "number";
  const int64_t max_new = int_param(params, "max_new_tokens", by_number ? 256 : 32);

  Result<EngineSession> e = open_engine_session(params);
  if (!e) return e.error();
  std::optional<Tokenizer> own;
  Result<const Tokenizer*> tok = eval_tokenizer(params, *e, own);
  if (!tok) return tok.error();
  Result<std::unique_ptr<KvCache>> cache = e->model->make_cache(e->kv, 1);
  if (!cache) return cache.error();
  EngineScoringModel lm(*e->model, *tok, **cache);

  // Exact match reads the first non-blank line: generation stops once it is complete.
  auto stop = [&](const std::string& text) {
    if (by_number) return false;
    const size_t start = text.find_first_not_of(" \t\r\n");
    return start != std::string::npos && text.find('\n', start) != std::string::npos;
  };
  int64_t right = 0, no_answer = 0;
  const auto t0 = Clock::now();
  for (size_t i = 0; i < rows->size(); ++i) {
    const PromptAnswer& p = (*rows)[i];
    Result<Generation> g = lm.greedy(p.prompt, max_new, stop);
    if (!g) return Error{spec->file + ", line " + std::to_string(p.line) + ": " + g.message()};
    if (by_number) {
      if (!final_number(g->text)) ++no_answer;
      right += number_match(g->text, p.answer);
    } else {
      if (first_line_answer(g->text).empty()) ++no_answer;
      right += exact_match(g->text, p.answer);
    }
    if (progress && ((i + 1) % 10 == 0 || i + 1 == rows->size()))
      progress(static_cast<double>(i + 1) / static_cast<double>(rows->size()),
               std::to_string(i + 1) + "/" + std::to_string(rows->size()) + " prompts");
  }
  const double eval_ms = ms_since(t0);
  JobOutput out;
  add_accuracy(out, "accuracy", right, static_cast<int64_t>(rows->size()));
  out.metrics.push_back(value_metric("prompts", static_cast<double>(rows->size()), ""));
  out.metrics.push_back(value_metric("no_answer", static_cast<double>(no_answer), ""));
  out.metrics.push_back(value_metric("generated_tokens", static_cast<double>(lm.generated_tokens()), "tokens"));
  out.metrics.push_back(value_metric("eval_s", eval_ms / 1000.0, "s"));
  out.device = session_device_json(*e);
  return out;
}

}  // namespace gb::engine

// The accuracy kinds' shared setup (engine/measure/evals/eval_session.h).
#include "engine/measure/evals/eval_session.h"

#include "engine/measure/evals/mc_eval.h"

namespace gb::engine {

Result<const Tokenizer*> eval_tokenizer(const Json& params, const EngineSession& e, std::optional<Tokenizer>& own) {
  const Tokenizer* tok = e.weights->tokenizer();
  if (auto it = params.find("tokenizer"); it != params.end()) {
    Result<Tokenizer> t = Tokenizer::from_file(it->get<std::string>());
    if (!t) return t.error();
    own = std::move(*t);
    tok = &*own;
  }
  if (tok == nullptr)
    return Error{"model '" + e.weights->describe() +
                 "' comes without a tokenizer: give one with the `tokenizer` parameter (a tokenizer.json)"};
  if (tok->vocab_size() > e.model->config().vocab_size)
    return Error{"tokenizer " + tok->source() + " has " + std::to_string(tok->vocab_size()) +
                 " tokens, more than the model's vocabulary of " + std::to_string(e.model->config().vocab_size)};
  return tok;
}

void add_accuracy(JobOutput& out, const std::string& name, int64_t right, int64_t n, const std::string& key) {
  const double p = n > 0 ? static_cast<double>(right) / static_cast<double>(n) : 0.0;
  const std::string k = key.empty() ? "" : ":" + key;
  out.metrics.push_back(value_metric(name + k, p, ""));
  out.metrics.push_back(value_metric(name + "_stderr" + k, accuracy_stderr(p, n), ""));
}

}  // namespace gb::engine

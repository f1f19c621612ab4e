// The engine as a ScoringModel (scoring_model.h): a loaded Model with its tokenizer
// and a one-sequence KvCache, which keeps the tokens it last ran so that the next
// request reuses their keys and values up to the longest common prefix (the shots
// of one subject, the context shared by a question's four choices). A continuation
// of n tokens costs one forward step of its first n - 1 tokens after the context
// (its first token is scored by the context's last logits), so a one-token letter
// costs nothing beyond the prompt. Where the cache cannot go back (a streaming cache
// that has evicted tokens) the context is run again.
//
// Token-level requests (loglikelihoods_ids) are what the tests hold against
// transformers on models without a tokenizer. Contexts longer than the model's
// max_position_embeddings lose their first tokens (lm-evaluation-harness' left
// truncation); truncated() counts the requests that did.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/measure/evals/scoring_model.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/model.h"
#include "engine/tokenizer/tokenizer.h"

namespace gb::engine {

class EngineScoringModel : public ScoringModel {
 public:
  // `tokenizer` may be null for the _ids calls only. The cache must have a sequence 0.
  EngineScoringModel(Model& model, const Tokenizer* tokenizer, KvCache& cache);

  Result<std::vector<double>> loglikelihoods(const std::string& context,
                                             const std::vector<std::string>& continuations) override;
  Result<Generation> greedy(const std::string& prompt, int64_t max_new_tokens,
                            const std::function<bool(const std::string&)>& stop) override;

  // log p(continuation | context) summed over each continuation's tokens.
  Result<std::vector<double>> loglikelihoods_ids(std::vector<int32_t> context,
                                                 const std::vector<std::vector<int32_t>>& continuations);

  int64_t truncated() const { return truncated_; }
  int64_t generated_tokens() const { return generated_; }
  int64_t forwarded_tokens() const { return forwarded_; }  // tokens run through the model

 private:
  // Brings the cache to exactly `ids` and returns the logits after its last token.
  Result<std::span<const float>> run_to(const std::vector<int32_t>& ids);
  Status forward(std::span<const int32_t> tokens, LogitsMode mode);

  Model& model_;
  const Tokenizer* tok_;
  KvCache& cache_;
  int64_t vocab_;
  int64_t eos_ = -1;
  std::vector<int32_t> ids_;  // what the cache holds
  std::vector<float> last_;   // logits after ids_.back(), when last_valid_
  bool last_valid_ = false;
  std::vector<float> logits_;
  int64_t truncated_ = 0, generated_ = 0, forwarded_ = 0;
};

}  // namespace gb::engine

// What the accuracy kinds ask of a language model: the log-likelihood of
// continuations of a context, and greedy generation. The engine implements it
// (engine_scoring_model.h); tests implement it with figures they choose, so that the
// scoring arithmetic (mc_eval.h) is checked against accuracies worked out by hand.
// Not here: prompts, answer parsing, or how a model computes anything.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace gb::engine {

struct Generation {
  std::string text;     // the new tokens decoded
  int64_t tokens = 0;   // how many were generated
};

class ScoringModel {
 public:
  virtual ~ScoringModel() = default;
  // For each continuation, log p(continuation | context) in nats, summed over its
  // tokens (the continuation's tokens are those that encoding context +
  // continuation adds after the context's, as lm-evaluation-harness takes them).
  virtual Result<std::vector<double>> loglikelihoods(const std::string& context,
                                                     const std::vector<std::string>& continuations) = 0;
  // The greedy continuation of `prompt`: at most max_new_tokens, ending early at the
  // end-of-sequence token (not included) or once stop(text so far) is true.
  virtual Result<Generation> greedy(const std::string& prompt, int64_t max_new_tokens,
                                    const std::function<bool(const std::string&)>& stop) = 0;
};

}  // namespace gb::engine

// Generation: prefill a prompt, then decode one token at a time until the length
// limit or an end-of-sequence token, timing each phase.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/model/model.h"
#include "engine/model/sampler.h"

namespace gb::engine {

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  SamplingOptions sampling;
  // Stop when this token is produced (it is kept in the output); -1: never.
  int64_t eos_token_id = -1;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // the new tokens
  double prefill_ms = 0;        // the prompt's forward pass, to the first token's logits
  std::vector<double> decode_ms;  // each later step
  std::string stop_reason;      // "length" or "eos"
};

// Generates for sequence `seq` of `cache`, which must be empty. on_token, when
// set, sees each new token as it is chosen.
Result<GenerateResult> generate(Model& model, KvCache& cache, int seq, std::span<const int32_t> prompt,
                                const GenerateOptions& options,
                                const std::function<void(int32_t)>& on_token = nullptr);

}  // namespace gb::engine

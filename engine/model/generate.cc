#include "engine/model/generate.h"

#include <chrono>

namespace gb::engine {

Result<GenerateResult> generate(Model& model, KvCache& cache, int seq, std::span<const int32_t> prompt,
                                const GenerateOptions& options, const std::function<void(int32_t)>& on_token) {
  if (prompt.empty()) return Error{"generate: the prompt has no tokens"};
  if (options.max_new_tokens < 0) return Error{"generate: max_new_tokens must be >= 0"};
  if (Status s = validate(options.sampling); !s.ok()) return s.error();
  if (cache.length(seq) != 0) return Error{"generate: the sequence's cache is not empty"};
  using Clock = std::chrono::steady_clock;
  GenerateResult out;
  out.stop_reason = "length";
  if (options.max_new_tokens == 0) return out;
  Sampler sampler(options.sampling);
  std::vector<float> logits;
  auto t0 = Clock::now();
  SequenceStep step{seq, prompt};
  if (Status s = model.forward({&step, 1}, cache, LogitsMode::kLast, &logits); !s.ok()) return s.error();
  out.prefill_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  for (;;) {
    const int32_t t = sampler.next(logits);
    out.tokens.push_back(t);
    if (on_token) on_token(t);
    if (options.eos_token_id >= 0 && t == options.eos_token_id) {
      out.stop_reason = "eos";
      break;
    }
    if (static_cast<int64_t>(out.tokens.size()) >= options.max_new_tokens) break;
    t0 = Clock::now();
    const int32_t one[1] = {t};
    step = SequenceStep{seq, std::span<const int32_t>(one, 1)};
    if (Status s = model.forward({&step, 1}, cache, LogitsMode::kLast, &logits); !s.ok()) return s.error();
    out.decode_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return out;
}

}  // namespace gb::engine

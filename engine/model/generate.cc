#include "engine/model/generate.h"

#include <chrono>

namespace gb::engine {
namespace {

// The next token from the logits the last forward_kept left, reduced in the backend:
// the argmax, or a draw with the sampler's next uniform (the same stream as
// Sampler::next on host logits).
Result<int32_t> next_token(Model& model, Sampler& sampler) {
  int32_t t = 0;
  const SamplingOptions& o = sampler.options();
  if (o.temperature == 0) {
    if (Status s = model.argmax({&t, 1}); !s.ok()) return s.error();
    return t;
  }
  const double u = sampler.uniform();
  if (Status s = model.sample(SamplingCut{o.temperature, o.top_k, o.top_p}, {&u, 1}, {&t, 1}); !s.ok())
    return s.error();
  return t;
}

}  // namespace

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
  auto t0 = Clock::now();
  SequenceStep step{seq, prompt};
  if (Status s = model.forward_kept({&step, 1}, cache, LogitsMode::kLast); !s.ok()) return s.error();
  out.prefill_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  for (;;) {
    Result<int32_t> next = next_token(model, sampler);
    if (!next) return next.error();
    const int32_t t = *next;
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
    if (Status s = model.forward_kept({&step, 1}, cache, LogitsMode::kLast); !s.ok()) return s.error();
    out.decode_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return out;
}

}  // namespace gb::engine

// Perplexity arithmetic (engine/measure/perplexity.h).
#include "engine/measure/perplexity.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/logits.h"

namespace gb::engine {

double token_nll(std::span<const float> logits, int32_t target) {
  // The negated log-probability: the same f64 arithmetic (negation is exact).
  return -kernels::cpu::target_log_prob_row(logits.data(), static_cast<int64_t>(logits.size()), target);
}

double PplStats::ppl() const { return std::exp(mean_nll()); }

double PplStats::ppl_stderr() const {
  if (count < 2) return 0;
  const double mean = mean_nll();
  const double var = sum2 / static_cast<double>(count) - mean * mean;
  return var > 0 ? ppl() * std::sqrt(var / static_cast<double>(count - 1)) : 0;
}

std::vector<PplWindow> llama_cpp_windows(int64_t n_tokens, int64_t ctx) {
  std::vector<PplWindow> w;
  for (int64_t begin = 0; begin + ctx <= n_tokens; begin += ctx) w.push_back({begin, ctx, ctx / 2, ctx - 1});
  return w;
}

std::vector<PplWindow> sliding_windows(int64_t n_tokens, int64_t ctx, int64_t stride) {
  std::vector<PplWindow> w;
  int64_t prev_end = 0;
  for (int64_t begin = 0; begin < n_tokens; begin += stride) {
    const int64_t end = std::min(begin + ctx, n_tokens);
    const int64_t len = end - begin, trg = end - prev_end;
    // Labels [len - trg, len) are scored; label t is predicted at position t - 1,
    // and label 0 has no prediction.
    w.push_back({begin, len, std::max<int64_t>(len - trg, 1) - 1, len - 1});
    prev_end = end;
    if (end == n_tokens) break;
  }
  return w;
}

}  // namespace gb::engine

// Perplexity arithmetic, shared by the `ppl` kind and its tests: token NLLs, their
// mean and standard error as llama.cpp reports them, and which windows of a
// dataset are fed and which of their predictions are scored (llama.cpp's chunks,
// Hugging Face's strided sliding window).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace gb::engine {

// The negative log-likelihood of `target`
// under the softmax of `logits` (computed in f64).
double token_nll(std::span<const float> logits, int32_t target);

// Accumulated token NLLs: ppl = exp(mean), and its standard error as llama.cpp
// reports it, ppl * sqrt(var(nll) / (n - 1)).
struct PplStats {
  double sum = 0, sum2 = 0;
  int64_t count = 0;
  void add(double nll) {
    sum += nll;
    sum2 += nll * nll;
    ++count;
  }
  double mean_nll() const { return count ? sum / static_cast<double>(count) : 0; }
  double ppl() const;
  double ppl_stderr() const;
};

// Which targets a perplexity evaluation scores. For each window: the token ids
// fed (a range of the dataset, possibly with its first replaced by BOS), and the
// range [first, last) of positions whose next-token prediction is scored
// (position j predicts window token j + 1).
struct PplWindow {
  int64_t begin = 0;  // into the dataset's tokens
  int64_t length = 0;
  int64_t first_scored = 0;
  int64_t end_scored = 0;  // exclusive; position end_scored - 1 predicts token end_scored
};
// llama.cpp's perplexity: floor(n / ctx) chunks of ctx tokens, positions
// [ctx / 2, ctx - 1) scored.
std::vector<PplWindow> llama_cpp_windows(int64_t n_tokens, int64_t ctx);
// Hugging Face's strided sliding window: windows of `ctx` starting every
// `stride` tokens, each scoring only the tokens the previous one did not.
std::vector<PplWindow> sliding_windows(int64_t n_tokens, int64_t ctx, int64_t stride);

}  // namespace gb::engine

// The logits reductions of kernels/cpu/logits.h: the CPU sampler's arithmetic
// (engine/model/sampler.cc draws its uniform and calls sample_row).
#include "kernels/cpu/logits.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace gb::kernels::cpu {

int32_t argmax_row(const float* logits, int64_t vocab) {
  int32_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  return best;
}

int32_t sample_row(const float* logits, int64_t vocab, double temperature, int64_t top_k, double top_p, double u01) {
  if (temperature == 0) return argmax_row(logits, vocab);
  const size_t n = static_cast<size_t>(vocab);
  // Candidates by descending logit (ties by id), cut by top-k.
  std::vector<int32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  const size_t k = top_k > 0 ? std::min(n, static_cast<size_t>(top_k)) : n;
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), by_logit);
  ids.resize(k);
  const double mx = logits[ids[0]];
  std::vector<double> p(k);
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += p[i] = std::exp((logits[ids[i]] - mx) / temperature);
  // Nucleus: the smallest prefix whose probability reaches top_p.
  size_t keep = k;
  if (top_p < 1) {
    double acc = 0;
    for (size_t i = 0; i < k; ++i) {
      acc += p[i] / sum;
      if (acc >= top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += p[i];
  const double u = u01 * total;
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (u < acc) return ids[i];
  }
  return ids[keep - 1];
}

double target_log_prob_row(const float* logits, int64_t vocab, int32_t target) {
  double mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, double{logits[i]});
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double{logits[i]} - mx);
  return -(std::log(sum) + mx - double{logits[target]});
}

}  // namespace gb::kernels::cpu

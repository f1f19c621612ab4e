#include "engine/model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace gb::engine {

Status validate(const SamplingOptions& o) {
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    return Error{"temperature must be a finite number >= 0"};
  if (o.top_k < 0) return Error{"top-k must be >= 0"};
  if (!(o.top_p > 0 && o.top_p <= 1)) return Error{"top-p must be in (0, 1]"};
  return Status();
}

int32_t argmax(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  return best;
}

int32_t Sampler::next(std::span<const float> logits) {
  if (o_.temperature == 0) return argmax(logits);
  // Candidates by descending logit (ties by id), cut by top-k.
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  const size_t k = o_.top_k > 0 ? std::min(logits.size(), static_cast<size_t>(o_.top_k)) : logits.size();
  auto by_logit = [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
           (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
  };
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), by_logit);
  ids.resize(k);
  const double mx = logits[static_cast<size_t>(ids[0])];
  std::vector<double> p(k);
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += p[i] = std::exp((logits[static_cast<size_t>(ids[i])] - mx) / o_.temperature);
  // Nucleus: the smallest prefix whose probability reaches top_p.
  size_t keep = k;
  if (o_.top_p < 1) {
    double acc = 0;
    for (size_t i = 0; i < k; ++i) {
      acc += p[i] / sum;
      if (acc >= o_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += p[i];
  // 53 random bits as a double in [0, 1): the same on every standard library.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (u < acc) return ids[i];
  }
  return ids[keep - 1];
}

}  // namespace gb::engine

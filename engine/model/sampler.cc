#include "engine/model/sampler.h"

#include <cmath>

#include "kernels/cpu/logits.h"

namespace gb::engine {

Status validate(const SamplingOptions& o) {
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    return Error{"temperature must be a finite number >= 0"};
  if (o.top_k < 0) return Error{"top-k must be >= 0"};
  if (!(o.top_p > 0 && o.top_p <= 1)) return Error{"top-p must be in (0, 1]"};
  return Status();
}

int32_t argmax(std::span<const float> logits) {
  return kernels::cpu::argmax_row(logits.data(), static_cast<int64_t>(logits.size()));
}

double Sampler::uniform() {
  // 53 random bits as a double in [0, 1): the same on every standard library.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

int32_t Sampler::next(std::span<const float> logits) {
  if (o_.temperature == 0) return argmax(logits);
  return kernels::cpu::sample_row(logits.data(), static_cast<int64_t>(logits.size()), o_.temperature, o_.top_k,
                                  o_.top_p, uniform());
}

}  // namespace gb::engine

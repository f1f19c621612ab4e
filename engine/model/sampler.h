// Choosing the next token from logits: greedy (argmax, the lowest id on ties, as
// torch.argmax does) or seeded sampling with temperature, top-k and top-p. The
// same seed gives the same tokens on every machine: the generator is
// std::mt19937_64 and the arithmetic is plain f64 (kernels/cpu/logits.h).
#pragma once

#include <cstdint>
#include <random>
#include <span>

#include "common/status.h"

namespace gb::engine {

struct SamplingOptions {
  double temperature = 0;  // 0: greedy
  int64_t top_k = 0;       // 0: all tokens
  double top_p = 1.0;      // nucleus; 1: all tokens
  uint64_t seed = 0;
};

Status validate(const SamplingOptions& o);

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& o) : o_(o), rng_(o.seed) {}
  int32_t next(std::span<const float> logits);
  // The uniform in [0, 1) that next() draws for one sampled token (temperature > 0),
  // for a caller that samples elsewhere (Backend::sample_rows on a device) with the
  // same stream: one draw per sampled token, none for greedy steps.
  double uniform();
  const SamplingOptions& options() const { return o_; }

 private:
  SamplingOptions o_;
  std::mt19937_64 rng_;
};

int32_t argmax(std::span<const float> logits);

}  // namespace gb::engine

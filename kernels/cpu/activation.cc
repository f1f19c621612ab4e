// SiLU-gated and GELU activations (kernels/cpu/activation.h).
#include "kernels/cpu/activation.h"

#include <cmath>

namespace gb::kernels::cpu {

void silu_mul_rows(const float* gu, int64_t r0, int64_t r1, int64_t inner, float* out) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t i = 0; i < inner; ++i) {
      const float g = gu[r * 2 * inner + i], u = gu[r * 2 * inner + inner + i];
      out[r * inner + i] = g / (1.0f + std::exp(-g)) * u;
    }
}

void gelu_range(float* x, int64_t i0, int64_t i1, bool tanh_approximation) {
  if (tanh_approximation) {
    constexpr float kC = 0.7978845608028654f;  // sqrt(2 / pi)
    for (int64_t i = i0; i < i1; ++i) {
      const float v = x[i];
      x[i] = 0.5f * v * (1.0f + std::tanh(kC * (v + 0.044715f * v * v * v)));
    }
  } else {
    for (int64_t i = i0; i < i1; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
  }
}

}  // namespace gb::kernels::cpu

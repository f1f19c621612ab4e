// Elementwise x += y on f32 (the residual adds), CPU.
#pragma once

#include <cstdint>

namespace gb::kernels::cpu {

inline void add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace gb::kernels::cpu

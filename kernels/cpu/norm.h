// Normalization over rows of f32, the CPU reference (f64 accumulation). The
// backend splits the rows across its threads.
#pragma once

#include <cstdint>

namespace gb::kernels::cpu {

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w, rows r in [r0, r1).
void rms_norm_rows(const float* x, int64_t r0, int64_t r1, int64_t dim, const float* w, float eps, float* out);

// out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * w + b, rows r in [r0, r1).
void layer_norm_rows(const float* x, int64_t r0, int64_t r1, int64_t dim, const float* w, const float* b, float eps,
                     float* out);

}  // namespace gb::kernels::cpu

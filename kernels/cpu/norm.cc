// RMSNorm and LayerNorm rows (kernels/cpu/norm.h).
#include "kernels/cpu/norm.h"

#include <cmath>

namespace gb::kernels::cpu {

void rms_norm_rows(const float* x, int64_t r0, int64_t r1, int64_t dim, const float* w, float eps, float* out) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * dim;
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double{xr[i]} * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    for (int64_t i = 0; i < dim; ++i) out[r * dim + i] = xr[i] * inv * w[i];
  }
}

void layer_norm_rows(const float* x, int64_t r0, int64_t r1, int64_t dim, const float* w, const float* b, float eps,
                     float* out) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * dim;
    double sum = 0;
    for (int64_t i = 0; i < dim; ++i) sum += xr[i];
    const double mean = sum / dim;
    double var = 0;
    for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    const double inv = 1.0 / std::sqrt(var / dim + eps);
    for (int64_t i = 0; i < dim; ++i) out[r * dim + i] = static_cast<float>((xr[i] - mean) * inv) * w[i] + b[i];
  }
}

}  // namespace gb::kernels::cpu

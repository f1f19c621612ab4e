// RMSNorm and LayerNorm over rows on the device; kernels/cpu/norm.h is the reference.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"

namespace gb::kernels::cuda {

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w, rows of `dim`; out == x allowed.
Status rms_norm(cudaStream_t s, const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* out);
// out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * w + b; out == x allowed.
Status layer_norm(cudaStream_t s, const float* x, int64_t rows, int64_t dim, const float* w, const float* b,
                  float eps, float* out);

// The residual add fused in: x[r, :] += y[r, :] (stored), then the norm of the sum
// into out (distinct from x and y).
Status add_rms_norm(cudaStream_t s, float* x, const float* y, int64_t rows, int64_t dim, const float* w, float eps,
                    float* out);
Status add_layer_norm(cudaStream_t s, float* x, const float* y, int64_t rows, int64_t dim, const float* w,
                      const float* b, float eps, float* out);

}  // namespace gb::kernels::cuda

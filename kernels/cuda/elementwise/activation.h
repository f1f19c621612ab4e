// SiLU-gated and GELU activations on the device; kernels/cpu/activation.h is the
// reference.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"

namespace gb::kernels::cuda {

// out[r, i] = silu(gu[r, i]) * gu[r, inner + i], gu [rows, 2 * inner], out [rows, inner].
Status silu_mul(cudaStream_t s, const float* gu, int64_t rows, int64_t inner, float* out);
// In place GELU over n floats: exact (erf) or the tanh approximation.
Status gelu(cudaStream_t s, float* x, int64_t n, bool tanh_approximation);

}  // namespace gb::kernels::cuda

// x[i] += y[i] on the device (the residual adds); kernels/cpu/add.h is the reference.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"

namespace gb::kernels::cuda {

// Enqueues x[i] += y[i], i < n, on `s` (device pointers; x == y allowed).
Status add(cudaStream_t s, float* x, const float* y, int64_t n);

}  // namespace gb::kernels::cuda

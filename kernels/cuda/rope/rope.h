// Rotate-half RoPE on the device; kernels/cpu/rope.h is the reference.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"

namespace gb::kernels::cuda {

// Rotates the first rot_dim dims of every head of rows [0, rows) of
// x [rows, heads, head_dim] (row stride `row_stride` floats) in place: row r to
// positions[r], pair (i, i + rot_dim / 2) by angle positions[r] * inv_freq[i].
// positions (rows values) and inv_freq (rot_dim / 2 values) are device memory.
// rot_dim <= head_dim, even (partial rotary: rot_dim < head_dim leaves the rest).
Status rope(cudaStream_t s, float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim,
            const int64_t* positions, int64_t rot_dim, const float* inv_freq);

}  // namespace gb::kernels::cuda

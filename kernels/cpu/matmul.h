// The CPU matrix kernel: y = x W^T + b for a slice of the output features, f32.
// It is where decode spends its time (one pass over the weights per token), so it
// is written to run at memory bandwidth; the backend splits the output features
// across its threads.
#pragma once

#include <cstdint>

namespace gb::kernels::cpu {

// y[m, n] = x[m, :] . W[n, :] (+ b[n]) for rows m in [0, rows) and features n in
// [n0, n1). x [rows, K], W [N, K], b [N] or null, y [rows, N]; all row-major.
void linear_range(const float* x, int64_t rows, int64_t K, const float* W, const float* bias, int64_t N,
                  int64_t n0, int64_t n1, float* y);

}  // namespace gb::kernels::cpu

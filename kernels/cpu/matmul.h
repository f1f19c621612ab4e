// The CPU matrix kernels: y = x W^T + b for a slice of the output features, x and y
// f32, W in any weight codec (kernels/codecs/packed_matrix.h).
// It is where decode spends its time (one pass over the weights per token), so it
// is written to run at memory bandwidth; the backend splits the output features
// across its threads.
#pragma once

#include <cstdint>

#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels::cpu {

// y[m * ldy + n] = x[m, :] . W[n, :] (+ b[n]) for rows m in [0, rows) and features
// n in [n0, n1). x [rows, W.cols], W [W.rows, W.cols] in any codec, b [W.rows] or
// null; all row-major. Picks the fastest kernel for W's codec.
void linear_range(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0, int64_t n1,
                  float* y, int64_t ldy);

// The same through the codec's reference dequantizer (dequantize_row) and f32 dot
// products: what every fast kernel is tested against.
void linear_range_reference(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                            int64_t n1, float* y, int64_t ldy);

}  // namespace gb::kernels::cpu

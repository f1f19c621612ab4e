// The CPU matrix kernels: y = x W^T + b for a slice of the output features, x and y
// f32, W in any weight codec (kernels/codecs/packed_matrix.h), read packed as it is
// stored. It is where decode spends its time (one pass over the weights per token),
// so it is written to run at memory bandwidth; the backend splits the output
// features across its threads. This is the dispatcher: the kernels themselves, one
// family per file, are in kernels/cpu/packed/.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/codecs/compute_dtype.h"
#include "kernels/codecs/packed_matrix.h"
#include "kernels/cpu/packed/activations_q8.h"

namespace gb::kernels::cpu {

// y[m * ldy + n] = x[m, :] . W[n, :] (+ b[n]) for rows m in [0, rows) and features
// n in [n0, n1). x [rows, W.cols], W [W.rows, W.cols] in any codec, b [W.rows] or
// null; all row-major. Picks the fastest kernel for W's codec: with xq (the same
// activations, prepared for W's codec: QuantizedActivations::prepare), the q8
// kernels for the codecs that have one (q8_activation_block > 0), else f32
// activations.
void linear_range(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0, int64_t n1,
                  float* y, int64_t ldy, const QuantizedActivations* xq = nullptr);

// Which kernel linear_range runs for W in `mode`, for reports: "f16-avx2",
// "q4_0-q8-avx2", "q2_K-dequant", ...; an interleaved matrix's codec is named with
// "x8" ("q4_0x8-q8-avx2").
std::string linear_kernel_name(const PackedMatrix& W, ActivationMode mode);

// The same through the codec's reference dequantizer (dequantize_row) and f32 dot
// products: what every fast kernel is tested against.
void linear_range_reference(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                            int64_t n1, float* y, int64_t ldy);

// A compute dtype other than f32 (bitsandbytes' bnb_4bit_compute_dtype: the weights
// dequantized to it, the inputs cast to it, the products accumulated in f32 and the
// output written in it): linear_range_reference with each dequantized weight and the
// bias rounded to `dtype`, and each y rounded to it after the bias. x_rounded is x
// already rounded to `dtype` (round_to_compute_dtype, once per op for every part).
void linear_range_rounded(const float* x_rounded, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                          int64_t n1, float* y, int64_t ldy, ComputeDtype dtype);
// out[i] = x[i] rounded to `dtype` (kernels/codecs/compute_dtype.h), i < n.
void round_to_compute_dtype(const float* x, int64_t n, ComputeDtype dtype, float* out);

}  // namespace gb::kernels::cpu

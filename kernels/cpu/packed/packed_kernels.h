// The kernels that compute y = x W^T on packed weights, by codec family, and the
// scalar reference dot product of each (what the tests hold the fast ones to).
// Internal to kernels/cpu: the dispatcher (kernels/cpu/matmul.cc) picks one; the
// AVX2+FMA+F16C versions run only where has_avx2_fma_f16c() says so.
//
// Every kernel computes y[m * ldy + n] = x[m, :] . W[n, :] (+ b[n]) for activation
// rows m in [0, rows) and weight rows n in [n0, n1), reading the activation rows a
// few at a time against each weight block so that a weight load serves them all
// (prefill), and one row at a time at decode.
#pragma once

#include <cstdint>

#include "kernels/codecs/packed_matrix.h"
#include "kernels/cpu/packed/activations_q8.h"
#include "kernels/cpu/packed/activations_w8a8.h"

namespace gb::kernels::cpu {

// Whether this CPU runs the AVX2 kernels (AVX2, FMA and F16C), checked once.
bool has_avx2_fma_f16c();

// ---- f32 activations ----
// f16 and bf16 (kernels/cpu/packed/linear_float16.cc).
bool float16_kernel_supports(WeightCodec c);
void linear_float16_avx2(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                         int64_t n1, float* y, int64_t ldy);
// int8, fp8 (row or group scales), int4 (group, zero point), nf4, fp4
// (kernels/cpu/packed/linear_grouped.cc).
bool grouped_kernel_supports(const PackedMatrix& W);
void linear_grouped_avx2(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                         int64_t n1, float* y, int64_t ldy);
// The reference for every codec with f32 activations: W's row dequantized by
// dequantize_row, then an f64 dot product.
double reference_dot_f32(const PackedMatrix& W, int64_t n, const float* x);

// ---- q8 activations ----
// q8_0, q4_0, q4_1, q5_0, q5_1 against ActQ8_0 rows (kernels/cpu/packed/linear_q8_0.cc).
void linear_q8_0_avx2(const ActQ8_0* xq, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                      int64_t n1, float* y, int64_t ldy);
// q2_K, q3_K, q4_K, q5_K, q6_K against ActQ8_K rows (kernels/cpu/packed/linear_q8_k.cc).
void linear_q8_K_avx2(const ActQ8_K* xq, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                      int64_t n1, float* y, int64_t ldy);
// Scalar references: weight row n of W against one activation row's blocks, integer
// dot products per block as llama.cpp's generic code computes them
// (kernels/cpu/packed/reference_dots.cc).
float reference_dot_q8_0(const PackedMatrix& W, int64_t n, const ActQ8_0* x);
float reference_dot_q8_K(const PackedMatrix& W, int64_t n, const ActQ8_K* x);
// The same for every row pair: the q8 mode on a CPU without AVX2, and the tests'
// reference.
void linear_q8_reference(const QuantizedActivations& xq, const PackedMatrix& W, const float* bias, int64_t n0,
                         int64_t n1, float* y, int64_t ldy);

// ---- activations quantized per token (W8A8, LLM.int8()) ----
// int8 or fp8 weights with a scale per row against TokenActivations
// (kernels/cpu/packed/linear_w8a8.cc): int8 x int8 integer dot products, fp8
// emulated on f32 tiles; with xq's outlier columns (LLM.int8()) their float part added.
bool w8a8_kernel_supports(const PackedMatrix& W);
void linear_w8a8_avx2(const TokenActivations& xq, const PackedMatrix& W, const float* bias, int64_t n0, int64_t n1,
                      float* y, int64_t ldy);
// The AVX2 kernel where the CPU has it, else the reference.
void linear_w8a8_range(const TokenActivations& xq, const PackedMatrix& W, const float* bias, int64_t n0, int64_t n1,
                       float* y, int64_t ldy);
// Scalar references: the integer (int8) or f64 (fp8) sum of code products times both
// scales; LLM.int8()'s outlier part in f64 (kernels/cpu/packed/linear_llm_int8.cc);
// and every (m, n) with the bias.
double reference_dot_w8a8(const TokenActivations& xq, int64_t m, const PackedMatrix& W, int64_t n);
double reference_llm_int8_outliers(const TokenActivations& xq, int64_t m, const PackedMatrix& W, int64_t n);
void linear_w8a8_reference(const TokenActivations& xq, const PackedMatrix& W, const float* bias, int64_t n0,
                           int64_t n1, float* y, int64_t ldy);
// y[m, n] += LLM.int8()'s outlier part, in f32 (kernels/cpu/packed/linear_llm_int8.cc).
void add_llm_int8_outliers(const TokenActivations& xq, const PackedMatrix& W, int64_t n0, int64_t n1, float* y,
                           int64_t ldy);

}  // namespace gb::kernels::cpu

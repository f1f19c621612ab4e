// The CPU matrix kernels (kernels/cpu/matmul.h): 8-wide vector accumulators, up to
// four activation rows per weight row, 64 activation rows kept hot while weight rows
// stream by, compiled for AVX2+FMA (x86-64-v3) with a generic fallback chosen at
// load time (target_clones) for f32 weights; and the dispatch of every other codec
// to its packed kernel (kernels/cpu/packed/), or, for the cases without one (the
// GGUF codecs with f32 activations, odd group sizes) and CPUs without AVX2, through
// its reference dequantizer one weight row at a time; and the compute-dtype path
// (bf16 or f16 inputs and weights, f32 sums) through the same row dequantizer.
#include "kernels/cpu/matmul.h"

#include "kernels/cpu/packed/packed_kernels.h"
#include "kernels/quantize/quantize_matrix.h"

#include <algorithm>
#include <vector>

namespace gb::kernels::cpu {

typedef float v8f __attribute__((vector_size(32)));
typedef float v8fu __attribute__((vector_size(32), aligned(4)));

// Macros rather than functions: a function passing or returning a 256-bit vector
// would have a different ABI in the generic clone (and clang refuses it).
#define GB_LOAD8(p) (*reinterpret_cast<const v8fu*>(p))
#define GB_HSUM(v) ((((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7])))

namespace {

// out[m - m0] = x[m, :] . w for m in [m0, m1): four activation rows at a time against
// one weight row. Always inlined, so that each target clone below compiles it for
// its own ISA.
__attribute__((always_inline)) inline void row_dots(const float* x, int64_t m0, int64_t m1, int64_t K,
                                                    const float* w, float b, float* y, int64_t ldy) {
  const int64_t K8 = K & ~int64_t{7};
  int64_t m = m0;
  for (; m + 4 <= m1; m += 4) {
    const float* x0 = x + m * K;
    const float* x1 = x0 + K;
    const float* x2 = x1 + K;
    const float* x3 = x2 + K;
    v8f a0 = {}, a1 = {}, a2 = {}, a3 = {};
    for (int64_t k = 0; k < K8; k += 8) {
      const v8f wv = GB_LOAD8(w + k);
      a0 += GB_LOAD8(x0 + k) * wv;
      a1 += GB_LOAD8(x1 + k) * wv;
      a2 += GB_LOAD8(x2 + k) * wv;
      a3 += GB_LOAD8(x3 + k) * wv;
    }
    float s0 = GB_HSUM(a0), s1 = GB_HSUM(a1), s2 = GB_HSUM(a2), s3 = GB_HSUM(a3);
    for (int64_t k = K8; k < K; ++k) {
      s0 += x0[k] * w[k];
      s1 += x1[k] * w[k];
      s2 += x2[k] * w[k];
      s3 += x3[k] * w[k];
    }
    y[m * ldy] = s0 + b;
    y[(m + 1) * ldy] = s1 + b;
    y[(m + 2) * ldy] = s2 + b;
    y[(m + 3) * ldy] = s3 + b;
  }
  for (; m < m1; ++m) {
    const float* x0 = x + m * K;
    v8f a0 = {}, a1 = {};
    int64_t k = 0;
    for (; k + 16 <= K8; k += 16) {
      a0 += GB_LOAD8(x0 + k) * GB_LOAD8(w + k);
      a1 += GB_LOAD8(x0 + k + 8) * GB_LOAD8(w + k + 8);
    }
    for (; k < K8; k += 8) a0 += GB_LOAD8(x0 + k) * GB_LOAD8(w + k);
    a0 += a1;
    float s = GB_HSUM(a0);
    for (k = K8; k < K; ++k) s += x0[k] * w[k];
    y[m * ldy] = s + b;
  }
}

constexpr int64_t kRowChunk = 64;  // activation rows kept hot while weight rows stream by

// f32 weights: y[m, n] for n in [n0, n1).
__attribute__((target_clones("arch=x86-64-v3", "default")))
void linear_f32_impl(const float* x, int64_t rows, int64_t K, const float* W, const float* bias, int64_t ldy,
                     int64_t n0, int64_t n1, float* y) {
  for (int64_t m0 = 0; m0 < rows; m0 += kRowChunk) {
    const int64_t m1 = std::min(rows, m0 + kRowChunk);
    for (int64_t n = n0; n < n1; ++n) row_dots(x, m0, m1, K, W + n * K, bias ? bias[n] : 0.0f, y + n, ldy);
  }
}

// Any codec through its reference dequantizer: each weight row dequantized to f32
// once per chunk of activation rows, then the f32 dot products. With a compute dtype
// other than f32, each dequantized weight, the bias and each output are rounded to
// it too (the caller rounds x).
__attribute__((target_clones("arch=x86-64-v3", "default")))
void linear_dequant_impl(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                         int64_t n1, float* y, int64_t ldy, float* wrow, ComputeDtype dtype) {
  const int64_t K = W.cols;
  for (int64_t m0 = 0; m0 < rows; m0 += kRowChunk) {
    const int64_t m1 = std::min(rows, m0 + kRowChunk);
    for (int64_t n = n0; n < n1; ++n) {
      dequantize_row(W, n, wrow);
      if (dtype == ComputeDtype::kF32) {
        row_dots(x, m0, m1, K, wrow, bias ? bias[n] : 0.0f, y + n, ldy);
        continue;
      }
      for (int64_t k = 0; k < K; ++k) wrow[k] = kernels::round_to_compute_dtype(wrow[k], dtype);
      row_dots(x, m0, m1, K, wrow, bias ? kernels::round_to_compute_dtype(bias[n], dtype) : 0.0f, y + n, ldy);
      for (int64_t m = m0; m < m1; ++m) y[m * ldy + n] = kernels::round_to_compute_dtype(y[m * ldy + n], dtype);
    }
  }
}

}  // namespace

namespace {

enum class Kernel { kF32, kFloat16, kGrouped, kQ8_0, kQ8_K, kQ8Reference, kDequant };

Kernel pick(const PackedMatrix& W, bool q8) {
  if (W.codec == WeightCodec::kF32) return Kernel::kF32;
  const int block = q8 ? q8_activation_block(W.codec) : 0;
  const bool avx2 = has_avx2_fma_f16c();
  if (block > 0 && W.cols % block == 0) {
    if (!avx2) return Kernel::kQ8Reference;
    return block == 32 ? Kernel::kQ8_0 : Kernel::kQ8_K;
  }
  if (!avx2) return Kernel::kDequant;
  if (float16_kernel_supports(W.codec)) return Kernel::kFloat16;
  if (grouped_kernel_supports(W)) return Kernel::kGrouped;
  return Kernel::kDequant;
}

}  // namespace

void linear_range(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0, int64_t n1,
                  float* y, int64_t ldy, const QuantizedActivations* xq) {
  const int block = xq ? q8_activation_block(W.codec) : 0;
  const bool q8 = block > 0 && (block == 32 ? xq->has_q8_0 : xq->has_q8_K);
  switch (pick(W, q8)) {
    case Kernel::kF32:
      return linear_f32_impl(x, rows, W.cols, reinterpret_cast<const float*>(W.codes), bias, ldy, n0, n1, y);
    case Kernel::kFloat16: return linear_float16_avx2(x, rows, W, bias, n0, n1, y, ldy);
    case Kernel::kGrouped: return linear_grouped_avx2(x, rows, W, bias, n0, n1, y, ldy);
    case Kernel::kQ8_0: return linear_q8_0_avx2(xq->q8_0.data(), rows, W, bias, n0, n1, y, ldy);
    case Kernel::kQ8_K: return linear_q8_K_avx2(xq->q8_K.data(), rows, W, bias, n0, n1, y, ldy);
    case Kernel::kQ8Reference: return linear_q8_reference(*xq, W, bias, n0, n1, y, ldy);
    case Kernel::kDequant: return linear_range_reference(x, rows, W, bias, n0, n1, y, ldy);
  }
}

std::string linear_kernel_name(const PackedMatrix& W, ActivationMode mode) {
  const std::string c = codec_name(W.codec);
  switch (pick(W, mode == ActivationMode::kQ8)) {
    case Kernel::kF32: return "f32";
    case Kernel::kFloat16:
    case Kernel::kGrouped: return c + "-avx2";
    case Kernel::kQ8_0:
    case Kernel::kQ8_K: return c + (W.interleave ? "x8" : "") + "-q8-avx2";
    case Kernel::kQ8Reference: return c + (W.interleave ? "x8" : "") + "-q8-scalar";
    case Kernel::kDequant: break;
  }
  return c + (W.interleave ? "x8" : "") + "-dequant";
}

void linear_range_reference(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                            int64_t n1, float* y, int64_t ldy) {
  std::vector<float> wrow(static_cast<size_t>(W.cols));
  linear_dequant_impl(x, rows, W, bias, n0, n1, y, ldy, wrow.data(), ComputeDtype::kF32);
}

void round_to_compute_dtype(const float* x, int64_t n, ComputeDtype dtype, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = kernels::round_to_compute_dtype(x[i], dtype);
}

void linear_range_rounded(const float* x_rounded, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                          int64_t n1, float* y, int64_t ldy, ComputeDtype dtype) {
  std::vector<float> wrow(static_cast<size_t>(W.cols));
  linear_dequant_impl(x_rounded, rows, W, bias, n0, n1, y, ldy, wrow.data(), dtype);
}

}  // namespace gb::kernels::cpu

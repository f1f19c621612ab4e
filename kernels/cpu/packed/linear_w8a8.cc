// The W8A8 linear kernels: int8 or fp8 weights with a scale per output row against
// activations quantized per token (activations_w8a8.h), y[m, n] = xs[m] ws[n]
// sum_k qx[m, k] qw[n, k] (+ b[n]).
//  - int8 x int8: integer dot products, 32 codes at a time (AVX2 maddubs on |x| and
//    w with x's sign, then madd to int32 lanes), one int32 sum per (m, n) scaled
//    once; exact, so the AVX2 kernel equals the scalar reference to float rounding
//    of the final scaling.
//  - fp8 x fp8 (emulated: x86 has no fp8 arithmetic): each weight row decoded to an
//    f32 tile through a 256-entry table, the activations' e4m3 values kept as f32
//    (TokenActivations::values), f32 FMA dot products. Products of two e4m3 values
//    are exact in f32; only the order of the f32 sums differs from the reference's
//    f64.
// LLM.int8()'s float part over the outlier columns is linear_llm_int8.cc's.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/packed/packed_kernels.h"

namespace gb::kernels::cpu {
namespace {

const float* fp8_table() {
  static const std::vector<float> t = [] {
    std::vector<float> v(256);
    for (int i = 0; i < 256; ++i) v[static_cast<size_t>(i)] = fp8_e4m3_to_f32(static_cast<uint8_t>(i));
    return v;
  }();
  return t.data();
}

float row_scale(const PackedMatrix& W, int64_t n) { return static_cast<const float*>(W.scales)[n]; }

}  // namespace

bool w8a8_kernel_supports(const PackedMatrix& W) {
  return (W.codec == WeightCodec::kInt8 || W.codec == WeightCodec::kFp8) && W.layout == ScaleLayout::kRow &&
         W.scales != nullptr;
}

double reference_dot_w8a8(const TokenActivations& xq, int64_t m, const PackedMatrix& W, int64_t n) {
  const uint8_t* w = W.row(n);
  const uint8_t* x = xq.codes.data() + m * xq.stride;
  double s = 0;
  if (W.codec == WeightCodec::kInt8) {
    int64_t acc = 0;
    for (int64_t k = 0; k < W.cols; ++k)
      acc += int64_t{static_cast<int8_t>(x[k])} * int64_t{static_cast<int8_t>(w[k])};
    s = static_cast<double>(acc);
  } else {
    for (int64_t k = 0; k < W.cols; ++k) s += double{fp8_e4m3_to_f32(x[k])} * double{fp8_e4m3_to_f32(w[k])};
  }
  return s * double{xq.scales[static_cast<size_t>(m)]} * double{row_scale(W, n)};
}

void linear_w8a8_reference(const TokenActivations& xq, const PackedMatrix& W, const float* bias, int64_t n0,
                           int64_t n1, float* y, int64_t ldy) {
  for (int64_t m = 0; m < xq.rows; ++m)
    for (int64_t n = n0; n < n1; ++n) {
      double s = reference_dot_w8a8(xq, m, W, n) + reference_llm_int8_outliers(xq, m, W, n);
      y[m * ldy + n] = static_cast<float>(s + (bias ? double{bias[n]} : 0.0));
    }
}

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace {

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

inline float hsum_f32(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 32 int8 products summed into 8 int32 lanes: maddubs takes an unsigned and a signed
// operand, so |x| against w with x's sign (neither is ever -128: both sides clamp at
// +-127, so a pair of products stays within int16).
inline __m256i dot32_i8(__m256i x, __m256i w) {
  const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(w, x));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

inline __m256i load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

void int8_rows(const TokenActivations& xq, const PackedMatrix& W, const float* bias, int64_t n0, int64_t n1, float* y,
               int64_t ldy) {
  const int64_t K = W.cols, K32 = K & ~int64_t{31};
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* w = W.row(n);
    const float ws = row_scale(W, n), b = bias ? bias[n] : 0.0f;
    int64_t m = 0;
    for (; m + 4 <= xq.rows; m += 4) {
      const uint8_t* x0 = xq.codes.data() + m * xq.stride;
      const uint8_t* x1 = x0 + xq.stride;
      const uint8_t* x2 = x1 + xq.stride;
      const uint8_t* x3 = x2 + xq.stride;
      __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
      for (int64_t k = 0; k < K32; k += 32) {
        const __m256i wv = load32(w + k);
        a0 = _mm256_add_epi32(a0, dot32_i8(load32(x0 + k), wv));
        a1 = _mm256_add_epi32(a1, dot32_i8(load32(x1 + k), wv));
        a2 = _mm256_add_epi32(a2, dot32_i8(load32(x2 + k), wv));
        a3 = _mm256_add_epi32(a3, dot32_i8(load32(x3 + k), wv));
      }
      int32_t s[4] = {hsum_i32(a0), hsum_i32(a1), hsum_i32(a2), hsum_i32(a3)};
      const uint8_t* xs[4] = {x0, x1, x2, x3};
      for (int i = 0; i < 4; ++i) {
        for (int64_t k = K32; k < K; ++k) s[i] += int32_t{static_cast<int8_t>(xs[i][k])} * static_cast<int8_t>(w[k]);
        y[(m + i) * ldy + n] = static_cast<float>(s[i]) * (xq.scales[static_cast<size_t>(m + i)] * ws) + b;
      }
    }
    for (; m < xq.rows; ++m) {
      const uint8_t* x0 = xq.codes.data() + m * xq.stride;
      __m256i a0 = _mm256_setzero_si256(), a1 = a0;
      int64_t k = 0;
      for (; k + 64 <= K32; k += 64) {
        a0 = _mm256_add_epi32(a0, dot32_i8(load32(x0 + k), load32(w + k)));
        a1 = _mm256_add_epi32(a1, dot32_i8(load32(x0 + k + 32), load32(w + k + 32)));
      }
      for (; k < K32; k += 32) a0 = _mm256_add_epi32(a0, dot32_i8(load32(x0 + k), load32(w + k)));
      int32_t s = hsum_i32(_mm256_add_epi32(a0, a1));
      for (k = K32; k < K; ++k) s += int32_t{static_cast<int8_t>(x0[k])} * static_cast<int8_t>(w[k]);
      y[m * ldy + n] = static_cast<float>(s) * (xq.scales[static_cast<size_t>(m)] * ws) + b;
    }
  }
}

void fp8_rows(const TokenActivations& xq, const PackedMatrix& W, const float* bias, int64_t n0, int64_t n1, float* y,
              int64_t ldy) {
  const float* table = fp8_table();
  const int64_t K = W.cols, S = xq.stride;
  std::vector<float> tile(static_cast<size_t>(S), 0.0f);  // the tail past K stays 0
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* w = W.row(n);
    for (int64_t k = 0; k < K; ++k) tile[static_cast<size_t>(k)] = table[w[k]];
    const float ws = row_scale(W, n), b = bias ? bias[n] : 0.0f;
    for (int64_t m = 0; m < xq.rows; ++m) {
      const float* x = xq.values.data() + m * S;
      __m256 a0 = _mm256_setzero_ps(), a1 = a0;
      int64_t k = 0;
      for (; k + 16 <= S; k += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(tile.data() + k), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 8), _mm256_loadu_ps(tile.data() + k + 8), a1);
      }
      for (; k < S; k += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(tile.data() + k), a0);
      y[m * ldy + n] = hsum_f32(_mm256_add_ps(a0, a1)) * (xq.scales[static_cast<size_t>(m)] * ws) + b;
    }
  }
}

}  // namespace

void linear_w8a8_avx2(const TokenActivations& xq, const PackedMatrix& W, const float* bias, int64_t n0, int64_t n1,
                      float* y, int64_t ldy) {
  if (W.codec == WeightCodec::kInt8) int8_rows(xq, W, bias, n0, n1, y, ldy);
  else fp8_rows(xq, W, bias, n0, n1, y, ldy);
  if (!xq.outlier_cols.empty()) add_llm_int8_outliers(xq, W, n0, n1, y, ldy);
}

#pragma GCC pop_options

void linear_w8a8_range(const TokenActivations& xq, const PackedMatrix& W, const float* bias, int64_t n0, int64_t n1,
                       float* y, int64_t ldy) {
  if (has_avx2_fma_f16c()) linear_w8a8_avx2(xq, W, bias, n0, n1, y, ldy);
  else linear_w8a8_reference(xq, W, bias, n0, n1, y, ldy);
}

}  // namespace gb::kernels::cpu

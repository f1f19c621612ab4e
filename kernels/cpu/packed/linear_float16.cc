// The f16 and bf16 linear kernels: weights read as stored (16 bits each, widened to
// f32 in registers: F16C's vcvtph2ps, or a shift for bf16) against f32
// activations, in AVX2+FMA (compiled with a target pragma; the dispatcher calls
// them only where the CPU has AVX2, FMA and F16C). Register tiles of weight rows x
// activation rows: 4 x 1 at decode (one activation load serves four weight rows),
// 3 x 4 for prefill (each weight load serves four activation rows, each activation
// load three weight rows: 12 accumulators, 16 registers in all). Not f32 weights
// (kernels/cpu/matmul.cc) nor the quantized codecs.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/packed/packed_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace gb::kernels::cpu {
namespace {

template <bool kBf16>
inline __m256 load8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (kBf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  else return _mm256_cvtph_ps(h);
}

template <bool kBf16>
inline float widen(uint16_t h) {
  return kBf16 ? bf16_to_f32(h) : _cvtsh_ss(h);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// out[i * NR + j] = x[i, :] . w[j, :] for NR weight rows (w0 + j * ldw) and MR
// activation rows (x + i * K). The fixed loops are unrolled so that the
// accumulators stay in registers.
template <bool kBf16, int NR, int MR>
inline void tile(const uint16_t* w0, size_t ldw, const float* x, int64_t K, float* out) {
  __m256 acc[MR][NR];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  const int64_t K8 = K & ~int64_t{7};
  for (int64_t k = 0; k < K8; k += 8) {
    __m256 wv[NR];
    #pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) wv[j] = load8<kBf16>(w0 + j * ldw + k);
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 xv = _mm256_loadu_ps(x + i * K + k);
      #pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      float s = hsum(acc[i][j]);
      for (int64_t k = K8; k < K; ++k) s += x[i * K + k] * widen<kBf16>(w0[j * ldw + k]);
      out[i * NR + j] = s;
    }
}

template <bool kBf16, int NR, int MR>
inline void store_tile(const uint16_t* W, size_t ldw, const float* x, int64_t K, int64_t m, int64_t n,
                       const float* bias, float* y, int64_t ldy) {
  float out[MR * NR];
  tile<kBf16, NR, MR>(W + n * ldw, ldw, x + m * K, K, out);
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) y[(m + i) * ldy + n + j] = out[i * NR + j] + (bias ? bias[n + j] : 0.0f);
}

template <bool kBf16>
void linear_impl(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0, int64_t n1,
                 float* y, int64_t ldy) {
  const auto* Wp = reinterpret_cast<const uint16_t*>(W.codes);
  const size_t ldw = W.row_bytes / 2;
  const int64_t K = W.cols;
  constexpr int64_t kRowChunk = 32;  // activation rows kept hot while weight rows stream by
  for (int64_t m0 = 0; m0 < rows; m0 += kRowChunk) {
    const int64_t m1 = std::min(rows, m0 + kRowChunk);
    int64_t n = n0;
    if (m1 - m0 >= 4) {
      for (; n + 3 <= n1; n += 3) {
        int64_t m = m0;
        for (; m + 4 <= m1; m += 4) store_tile<kBf16, 3, 4>(Wp, ldw, x, K, m, n, bias, y, ldy);
        for (; m < m1; ++m) store_tile<kBf16, 3, 1>(Wp, ldw, x, K, m, n, bias, y, ldy);
      }
      for (; n < n1; ++n) {
        int64_t m = m0;
        for (; m + 4 <= m1; m += 4) store_tile<kBf16, 1, 4>(Wp, ldw, x, K, m, n, bias, y, ldy);
        for (; m < m1; ++m) store_tile<kBf16, 1, 1>(Wp, ldw, x, K, m, n, bias, y, ldy);
      }
    } else {
      for (; n + 4 <= n1; n += 4)
        for (int64_t m = m0; m < m1; ++m) store_tile<kBf16, 4, 1>(Wp, ldw, x, K, m, n, bias, y, ldy);
    }
    for (; n < n1; ++n)
      for (int64_t m = m0; m < m1; ++m) store_tile<kBf16, 1, 1>(Wp, ldw, x, K, m, n, bias, y, ldy);
  }
}

}  // namespace

bool float16_kernel_supports(WeightCodec c) { return c == WeightCodec::kF16 || c == WeightCodec::kBF16; }

void linear_float16_avx2(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                         int64_t n1, float* y, int64_t ldy) {
  if (W.codec == WeightCodec::kBF16)
    linear_impl<true>(x, rows, W, bias, n0, n1, y, ldy);
  else
    linear_impl<false>(x, rows, W, bias, n0, n1, y, ldy);
}

}  // namespace gb::kernels::cpu

#pragma GCC pop_options

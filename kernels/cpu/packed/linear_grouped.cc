// The linear kernels of gridbench's own scaled formats against f32 activations:
// int8 and fp8 (a scale per row or per group), int4 (scale and zero point per
// group, element 2i in the low nibble) and bitsandbytes' nf4/fp4 (an absmax per
// block, element 2i in the high nibble), in AVX2+FMA+F16C (target pragma; called only
// where the CPU has those). Eight codes at a time are widened to f32 in registers
// (fp8 through its f16 bit pattern, nf4/fp4 through a 16-entry table in two
// registers), multiplied with up to four activation rows, and each group's sum is
// scaled once. Not the GGUF codecs (linear_q8_0.cc, linear_q8_k.cc).
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/packed/packed_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace gb::kernels::cpu {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

struct Table16 {  // a 16-entry f32 table in two registers
  __m256 lo, hi;
};

// Codes [k, k + 8) of a row as f32 (before the group's scale; int4 with its zero
// point z already subtracted).
template <WeightCodec C>
inline __m256 decode8(const uint8_t* row, int64_t k, __m256 z, const Table16& t) {
  if constexpr (C == WeightCodec::kInt8) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + k))));
  } else if constexpr (C == WeightCodec::kFp8) {
    // e4m3fn bits -> the f16 with the same sign, exponent and mantissa bits, whose
    // value is the fp8's times 2^-8 (normal and subnormal alike).
    const __m128i b = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + k)));
    const __m128i h = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x80)), 8),
                                   _mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x7F)), 7));
    return _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(256.0f));
  } else {
    uint32_t u;
    __builtin_memcpy(&u, row + k / 2, 4);
    const __m256i shifts = C == WeightCodec::kInt4 ? _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)
                                                   : _mm256_setr_epi32(4, 0, 12, 8, 20, 16, 28, 24);
    const __m256i q = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(u)), shifts),
                                       _mm256_set1_epi32(15));
    if constexpr (C == WeightCodec::kInt4) {
      return _mm256_sub_ps(_mm256_cvtepi32_ps(q), z);
    } else {
      const __m256 lo = _mm256_permutevar8x32_ps(t.lo, q), hi = _mm256_permutevar8x32_ps(t.hi, q);
      return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(q, 28)));
    }
  }
}

// Group g's scale (and int4's zero point) of row n.
template <WeightCodec C>
inline float group_scale(const PackedMatrix& W, int64_t n, int64_t g, float* z) {
  if constexpr (C == WeightCodec::kNf4 || C == WeightCodec::kFp4) {
    return bnb_absmax(W, n, g);
  } else if constexpr (C == WeightCodec::kInt4) {
    const int64_t i = n * W.groups_per_row() + g;
    *z = _cvtsh_ss(static_cast<const uint16_t*>(W.zeros)[i]);
    return _cvtsh_ss(static_cast<const uint16_t*>(W.scales)[i]);
  } else {
    if (W.layout == ScaleLayout::kRow) return static_cast<const float*>(W.scales)[n];
    return _cvtsh_ss(static_cast<const uint16_t*>(W.scales)[n * W.groups_per_row() + g]);
  }
}

template <WeightCodec C, int MR>
inline void dots(const PackedMatrix& W, int64_t n, int64_t G, const float* x, const Table16& t, float* out) {
  const int64_t K = W.cols;
  const uint8_t* row = W.row(n);
  __m256 acc[MR];
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t g = 0; g * G < K; ++g) {
    float zf = 0.0f;
    const float s = group_scale<C>(W, n, g, &zf);
    const __m256 z = _mm256_set1_ps(zf);
    __m256 ga[MR];
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) ga[i] = _mm256_setzero_ps();
    for (int64_t k = g * G; k < (g + 1) * G; k += 8) {
      const __m256 wv = decode8<C>(row, k, z, t);
      #pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) ga[i] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * K + k), wv, ga[i]);
    }
    const __m256 sv = _mm256_set1_ps(s);
    #pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) acc[i] = _mm256_fmadd_ps(sv, ga[i], acc[i]);
  }
  #pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) out[i] = hsum(acc[i]);
}

template <WeightCodec C>
void linear_impl(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0, int64_t n1,
                 float* y, int64_t ldy) {
  const int64_t K = W.cols;
  const bool whole_row = (C == WeightCodec::kInt8 || C == WeightCodec::kFp8) && W.layout == ScaleLayout::kRow;
  const int64_t G = whole_row ? K : W.group;
  Table16 t{};
  if constexpr (C == WeightCodec::kNf4 || C == WeightCodec::kFp4) {
    alignas(32) float v[16];
    for (int i = 0; i < 16; ++i)
      v[i] = C == WeightCodec::kNf4 ? nf4_value(static_cast<uint8_t>(i)) : fp4_value(static_cast<uint8_t>(i));
    t.lo = _mm256_load_ps(v);
    t.hi = _mm256_load_ps(v + 8);
  }
  constexpr int64_t kRowChunk = 32;
  for (int64_t m0 = 0; m0 < rows; m0 += kRowChunk) {
    const int64_t m1 = std::min(rows, m0 + kRowChunk);
    for (int64_t n = n0; n < n1; ++n) {
      const float b = bias ? bias[n] : 0.0f;
      float out[4];
      int64_t m = m0;
      for (; m + 4 <= m1; m += 4) {
        dots<C, 4>(W, n, G, x + m * K, t, out);
        for (int i = 0; i < 4; ++i) y[(m + i) * ldy + n] = out[i] + b;
      }
      for (; m < m1; ++m) {
        dots<C, 1>(W, n, G, x + m * K, t, out);
        y[m * ldy + n] = out[0] + b;
      }
    }
  }
}

}  // namespace

bool grouped_kernel_supports(const PackedMatrix& W) {
  switch (W.codec) {
    case WeightCodec::kInt8:
    case WeightCodec::kFp8:
      if (W.layout == ScaleLayout::kRow) return W.cols % 8 == 0;
      return W.layout == ScaleLayout::kGroup && W.group % 8 == 0 && W.cols % W.group == 0;
    case WeightCodec::kInt4:
    case WeightCodec::kNf4:
    case WeightCodec::kFp4: return W.group > 0 && W.group % 8 == 0 && W.cols % W.group == 0;
    default: return false;
  }
}

void linear_grouped_avx2(const float* x, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                         int64_t n1, float* y, int64_t ldy) {
  switch (W.codec) {
    case WeightCodec::kInt8: return linear_impl<WeightCodec::kInt8>(x, rows, W, bias, n0, n1, y, ldy);
    case WeightCodec::kFp8: return linear_impl<WeightCodec::kFp8>(x, rows, W, bias, n0, n1, y, ldy);
    case WeightCodec::kInt4: return linear_impl<WeightCodec::kInt4>(x, rows, W, bias, n0, n1, y, ldy);
    case WeightCodec::kNf4: return linear_impl<WeightCodec::kNf4>(x, rows, W, bias, n0, n1, y, ldy);
    case WeightCodec::kFp4: return linear_impl<WeightCodec::kFp4>(x, rows, W, bias, n0, n1, y, ldy);
    default: return;
  }
}

}  // namespace gb::kernels::cpu

#pragma GCC pop_options

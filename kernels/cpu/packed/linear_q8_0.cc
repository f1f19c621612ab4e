// The q8 mode's kernels for GGUF's 32-element blocks (q8_0, q4_0, q4_1, q5_0, q5_1)
// against activations quantized to q8_0-style blocks (ActQ8_0), in AVX2 (compiled
// for AVX2+FMA+F16C with a target pragma; the dispatcher calls them only where the
// CPU has those). Each weight block is unpacked to 32 int8 once and multiplied with
// up to four activation rows (maddubs: unsigned x signed bytes -> i16 pairs), as
// llama.cpp's ggml_vec_dot_*_q8_* do for one row. Not the f32-activation path
// (kernels/cpu/matmul.cc) nor the K-quants (linear_q8_k.cc).
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/packed/packed_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace gb::kernels::cpu {
namespace {

inline float f16(uint16_t h) { return _cvtsh_ss(h); }

inline __m256i nibbles32(const uint8_t* qs) {  // 16 bytes -> low nibbles then high nibbles
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

inline __m256i bits32(const uint8_t* qh) {  // bit i of 4 bytes -> byte i 0xFF or 0
  uint32_t x32;
  __builtin_memcpy(&x32, qh, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x32)), shuf);
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

inline __m256 sum_i16_pairs(__m256i p16) { return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1))); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The 8-bit weights of block b (signed, or unsigned with a min m), its d and m.
template <WeightCodec C>
inline __m256i weights(const uint8_t* blk, float* d, float* m) {
  if constexpr (C == WeightCodec::kQ8_0) {
    const auto* b = reinterpret_cast<const BlockQ8_0*>(blk);
    *d = f16(b->d);
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs));
  } else if constexpr (C == WeightCodec::kQ4_0) {
    // q - 8 as q4_1's unsigned q with the min -8 d: no sign moves in the products.
    const auto* b = reinterpret_cast<const BlockQ4_0*>(blk);
    *d = f16(b->d);
    *m = -8.0f * *d;
    return nibbles32(b->qs);
  } else if constexpr (C == WeightCodec::kQ4_1) {
    const auto* b = reinterpret_cast<const BlockQ4_1*>(blk);
    *d = f16(b->d);
    *m = f16(b->m);
    return nibbles32(b->qs);
  } else if constexpr (C == WeightCodec::kQ5_0) {
    // q - 16 as unsigned q with the min -16 d, as for q4_0.
    const auto* b = reinterpret_cast<const BlockQ5_0*>(blk);
    *d = f16(b->d);
    *m = -16.0f * *d;
    const __m256i hi = _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(b->qs), hi);
  } else {
    const auto* b = reinterpret_cast<const BlockQ5_1*>(blk);
    *d = f16(b->d);
    *m = f16(b->m);
    const __m256i hi = _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(b->qs), hi);
  }
}

// Only q8_0's weights are signed bytes; the others are unsigned with a min (q4_0's
// and q5_0's the offset times d).
constexpr bool is_signed(WeightCodec c) { return c == WeightCodec::kQ8_0; }

// R activation rows (x[r] = xq + r * nb) against weight row w: out[r] = dot.
template <WeightCodec C, int R>
inline void dots(const uint8_t* w, int64_t nb, const ActQ8_0* x, float* out) {
  constexpr int kBytes = ggml_block_shape(C).bytes;
  __m256 acc[R];
  float mins[R];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    acc[r] = _mm256_setzero_ps();
    mins[r] = 0.0f;
  }
  for (int64_t b = 0; b < nb; ++b) {
    float d, m = 0.0f;
    const __m256i q = weights<C>(w + b * kBytes, &d, &m);
    // Signed weights: |q| as the unsigned operand, the sign moved onto x.
    const __m256i uq = is_signed(C) ? _mm256_sign_epi8(q, q) : q;
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const ActQ8_0& a = x[r * nb + b];
      __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
      if (is_signed(C)) xv = _mm256_sign_epi8(xv, q);
      const __m256 p = sum_i16_pairs(_mm256_maddubs_epi16(uq, xv));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), p, acc[r]);
      if (!is_signed(C)) mins[r] += m * a.s;
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]) + mins[r];
}

// One activation row (decode) against NR weight rows (w + j * ldw): NR independent
// accumulator chains, and each activation block loaded once for all of them.
template <WeightCodec C, int NR>
inline void dots_rows(const uint8_t* w, size_t ldw, int64_t nb, const ActQ8_0* x, float* out) {
  constexpr int kBytes = ggml_block_shape(C).bytes;
  constexpr int64_t kAhead = 512 / kBytes;
  __m256 acc[NR];
  float mins[NR];
  #pragma GCC unroll 8
  for (int j = 0; j < NR; ++j) {
    acc[j] = _mm256_setzero_ps();
    mins[j] = 0.0f;
  }
  for (int64_t b = 0; b < nb; ++b) {
    const ActQ8_0& a = x[b];
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
    #pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      // The rows' bytes a few hundred bytes ahead, asked for now: NR streams at
      // once are more than the hardware prefetcher keeps ahead of at decode.
      _mm_prefetch(reinterpret_cast<const char*>(w + j * ldw + (b + kAhead) * kBytes), _MM_HINT_T0);
      float d, m = 0.0f;
      const __m256i q = weights<C>(w + j * ldw + b * kBytes, &d, &m);
      const __m256i p16 = is_signed(C) ? _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xv, q))
                                       : _mm256_maddubs_epi16(q, xv);
      acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), sum_i16_pairs(p16), acc[j]);
      if (!is_signed(C)) mins[j] += m * a.s;
    }
  }
  #pragma GCC unroll 8
  for (int j = 0; j < NR; ++j) out[j] = hsum(acc[j]) + mins[j];
}

// ---- the x8 layout (kernels/codecs/ggml_interleaved.h): q8_0 and q4_0 ----

// R activation rows (x[r * nb + b]) against row group g (8 weight rows, nb x8
// blocks): out[r] lane i = the dot of activation row r with weight row i. Each
// block: the 8 rows' scales converted at once; per activation row, each of its 8
// dwords (4 quants) broadcast against the vector holding those 4 quants of all 8
// rows, so that a madd leaves row i's sum in lane i.
template <WeightCodec C, int R>
inline void x8_dots(const uint8_t* g, int64_t nb, const ActQ8_0* x, __m256* out) {
  constexpr int kBytes = 8 * ggml_block_shape(C).bytes;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R];
  #pragma GCC unroll 4
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = g + b * kBytes;
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    const uint8_t* qs = blk + 16;
    if constexpr (C == WeightCodec::kQ4_0) {
      // Unsigned q with the min -8 d (as the plain kernel): 8 products of at most
      // 2 * 15 * 127 summed in i16 stay below 32767.
      const __m256i lo4 = _mm256_set1_epi8(0x0F);
      __m256i w[8];
      #pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
        w[c] = _mm256_and_si256(v, lo4);
        w[c + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4);
      }
      #pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const ActQ8_0& a = x[r * nb + b];
        const auto* xd = reinterpret_cast<const int32_t*>(a.qs);
        __m256i s16 = _mm256_maddubs_epi16(w[0], _mm256_set1_epi32(xd[0]));
        #pragma GCC unroll 8
        for (int c = 1; c < 8; ++c) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[c], _mm256_set1_epi32(xd[c])));
        const __m256 sf = _mm256_cvtepi32_ps(_mm256_madd_epi16(s16, ones));
        // d_w (d_x sum - 8 s_x), s_x = d_x sum(x).
        const __m256 t = _mm256_fmadd_ps(_mm256_set1_ps(a.d), sf, _mm256_set1_ps(-8.0f * a.s));
        acc[r] = _mm256_fmadd_ps(dw, t, acc[r]);
      }
    } else {
      // Signed weights: |w| as maddubs' unsigned operand, w's sign moved onto x;
      // each product pair summed to i32 at once (two pairs of 127 * 127 would not
      // fit in i16).
      __m256i s32[R];
      #pragma GCC unroll 4
      for (int r = 0; r < R; ++r) s32[r] = _mm256_setzero_si256();
      #pragma GCC unroll 8
      for (int c = 0; c < 8; ++c) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
        const __m256i aw = _mm256_sign_epi8(w, w);
        #pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const int32_t xd = reinterpret_cast<const int32_t*>(x[r * nb + b].qs)[c];
          const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(_mm256_set1_epi32(xd), w));
          s32[r] = _mm256_add_epi32(s32[r], _mm256_madd_epi16(p, ones));
        }
      }
      #pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
        acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(x[r * nb + b].d)), _mm256_cvtepi32_ps(s32[r]), acc[r]);
    }
  }
  #pragma GCC unroll 4
  for (int r = 0; r < R; ++r) out[r] = acc[r];
}

// y rows [m0, m1) x weight rows [n0, n1) of an interleaved q8_0/q4_0 matrix: whole
// groups through x8_dots (R = 4, 2, 1 activation rows at a time), a group that
// [n0, n1) cuts computed whole and the rows in range kept, and the rows past the
// last whole group (row-major) through the plain kernels.
template <WeightCodec C>
void linear_x8(const ActQ8_0* xq, int64_t m0, int64_t m1, const PackedMatrix& W, const float* bias, int64_t n0,
               int64_t n1, float* y, int64_t ldy) {
  const int64_t nb = W.cols / 32;
  const int64_t grouped = W.rows / 8 * 8;
  for (int64_t g = n0 / 8 * 8; g < std::min(n1, grouped); g += 8) {
    const uint8_t* w = W.row(g);
    const int64_t lo = std::max(n0, g) - g, hi = std::min(n1, g + 8) - g;
    __m256 b8 = _mm256_setzero_ps();
    if (bias) {
      alignas(32) float bb[8] = {};
      for (int64_t i = lo; i < hi; ++i) bb[i] = bias[g + i];
      b8 = _mm256_load_ps(bb);
    }
    auto put = [&](int64_t m, __m256 v) {
      v = _mm256_add_ps(v, b8);
      if (lo == 0 && hi == 8) {
        _mm256_storeu_ps(y + m * ldy + g, v);
        return;
      }
      alignas(32) float o[8];
      _mm256_store_ps(o, v);
      for (int64_t i = lo; i < hi; ++i) y[m * ldy + g + i] = o[i];
    };
    __m256 out[4];
    int64_t m = m0;
    for (; m + 4 <= m1; m += 4) {
      x8_dots<C, 4>(w, nb, xq + m * nb, out);
      for (int r = 0; r < 4; ++r) put(m + r, out[r]);
    }
    for (; m + 2 <= m1; m += 2) {
      x8_dots<C, 2>(w, nb, xq + m * nb, out);
      for (int r = 0; r < 2; ++r) put(m + r, out[r]);
    }
    for (; m < m1; ++m) {
      x8_dots<C, 1>(w, nb, xq + m * nb, out);
      put(m, out[0]);
    }
  }
  for (int64_t n = std::max(n0, grouped); n < n1; ++n) {
    const float b = bias ? bias[n] : 0.0f;
    for (int64_t m = m0; m < m1; ++m) {
      float out;
      dots_rows<C, 1>(W.row(n), W.row_bytes, nb, xq + m * nb, &out);
      y[m * ldy + n] = out + b;
    }
  }
}

template <WeightCodec C>
void linear_impl(const ActQ8_0* xq, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0, int64_t n1,
                 float* y, int64_t ldy) {
  const int64_t nb = W.cols / 32;
  if constexpr (C == WeightCodec::kQ8_0 || C == WeightCodec::kQ4_0) {
    if (W.interleave == kInterleaveRows) {
      // Activation rows (40 bytes per 32 inputs each) kept hot 64 at a time while
      // the weight groups stream by; at decode one pass.
      constexpr int64_t kRowChunk = 64;
      for (int64_t m0 = 0; m0 < rows; m0 += kRowChunk)
        linear_x8<C>(xq, m0, std::min(rows, m0 + kRowChunk), W, bias, n0, n1, y, ldy);
      return;
    }
  }
  if (rows < 4) {  // decode: four weight rows at a time
    for (int64_t m = 0; m < rows; ++m) {
      int64_t n = n0;
      float out[4];
      for (; n + 4 <= n1; n += 4) {
        dots_rows<C, 4>(W.row(n), W.row_bytes, nb, xq + m * nb, out);
        for (int j = 0; j < 4; ++j) y[m * ldy + n + j] = out[j] + (bias ? bias[n + j] : 0.0f);
      }
      for (; n < n1; ++n) {
        dots_rows<C, 1>(W.row(n), W.row_bytes, nb, xq + m * nb, out);
        y[m * ldy + n] = out[0] + (bias ? bias[n] : 0.0f);
      }
    }
    return;
  }
  constexpr int64_t kRowChunk = 64;  // activation rows (40 bytes per 32 inputs each) kept hot
  for (int64_t m0 = 0; m0 < rows; m0 += kRowChunk) {
    const int64_t m1 = std::min(rows, m0 + kRowChunk);
    for (int64_t n = n0; n < n1; ++n) {
      const uint8_t* w = W.row(n);
      const float b = bias ? bias[n] : 0.0f;
      float out[4];
      int64_t m = m0;
      for (; m + 4 <= m1; m += 4) {
        dots<C, 4>(w, nb, xq + m * nb, out);
        for (int r = 0; r < 4; ++r) y[(m + r) * ldy + n] = out[r] + b;
      }
      for (; m + 2 <= m1; m += 2) {
        dots<C, 2>(w, nb, xq + m * nb, out);
        for (int r = 0; r < 2; ++r) y[(m + r) * ldy + n] = out[r] + b;
      }
      for (; m < m1; ++m) {
        dots<C, 1>(w, nb, xq + m * nb, out);
        y[m * ldy + n] = out[0] + b;
      }
    }
  }
}

}  // namespace

void linear_q8_0_avx2(const ActQ8_0* xq, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                      int64_t n1, float* y, int64_t ldy) {
  switch (W.codec) {
    case WeightCodec::kQ8_0: return linear_impl<WeightCodec::kQ8_0>(xq, rows, W, bias, n0, n1, y, ldy);
    case WeightCodec::kQ4_0: return linear_impl<WeightCodec::kQ4_0>(xq, rows, W, bias, n0, n1, y, ldy);
    case WeightCodec::kQ4_1: return linear_impl<WeightCodec::kQ4_1>(xq, rows, W, bias, n0, n1, y, ldy);
    case WeightCodec::kQ5_0: return linear_impl<WeightCodec::kQ5_0>(xq, rows, W, bias, n0, n1, y, ldy);
    case WeightCodec::kQ5_1: return linear_impl<WeightCodec::kQ5_1>(xq, rows, W, bias, n0, n1, y, ldy);
    default: return;
  }
}

}  // namespace gb::kernels::cpu

#pragma GCC pop_options

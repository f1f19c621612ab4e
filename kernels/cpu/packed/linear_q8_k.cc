// The q8 mode's kernels for the K-quants (q2_K, q3_K, q4_K, q5_K, q6_K) against
// activations quantized to q8_K blocks of 256 (ActQ8_K), in AVX2 (compiled for
// AVX2+FMA+F16C with a target pragma; called only where the CPU has those), as
// llama.cpp's ggml_vec_dot_qN_K_q8_K compute them. Each 32-element slice of a
// weight block is unpacked to unsigned bytes once and multiplied with up to four
// activation rows (maddubs, then the sub-block scales with madd); the mins (q2_K,
// q4_K, q5_K) and the offsets (4 for q3_K, 32 for q6_K) come from the
// activations' sums per 16.
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/packed/packed_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace gb::kernels::cpu {
namespace {

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Each block's integer sums and its min or offset terms stay in vectors (the
// activations' 16 sums per 16 multiplied with the sub-block mins or scales by one
// madd): per row and block a convert and one or two FMAs into an f32 vector
// accumulator, and a single horizontal sum per row at the end.
inline __m256i bsums16(const ActQ8_K& a) { return load32(a.bsums); }

// mn[j] at int16 lanes 2j and 2j + 1: madd with the 16 sums per 16 gives
// mn[j] (bsums[2j] + bsums[2j + 1]) in i32 lane j.
inline __m256i min_pairs(const uint8_t* mn) {
  uint64_t m8;
  __builtin_memcpy(&m8, mn, 8);
  const __m128i v = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(m8)));
  return _mm256_set_m128i(_mm_unpackhi_epi16(v, v), _mm_unpacklo_epi16(v, v));
}

// The 8 6-bit scales and mins of a q4_K/q5_K block (ggml_scale_min_k4 for every j)
// by 32-bit word operations on its 12 bytes: sc 0-3 and mn 0-3 are the low 6 bits
// of bytes 0-3 and 4-7; sc 4-7 (mn 4-7) the low (high) nibbles of bytes 8-11 with
// the top two bits of bytes 0-3 (4-7) above them.
inline void scales_mins_k4(const uint8_t* q, uint8_t* sc, uint8_t* mn) {
  uint32_t u[3];
  __builtin_memcpy(u, q, 12);
  const uint32_t s[2] = {u[0] & 0x3F3F3F3Fu, (u[2] & 0x0F0F0F0Fu) | (((u[0] >> 6) & 0x03030303u) << 4)};
  const uint32_t m[2] = {u[1] & 0x3F3F3F3Fu, ((u[2] >> 4) & 0x0F0F0F0Fu) | (((u[1] >> 6) & 0x03030303u) << 4)};
  __builtin_memcpy(sc, s, 8);
  __builtin_memcpy(mn, m, 8);
}

// q4_K: 8 sub-blocks of 32, x = d sc_j q - dmin m_j.
template <int R>
inline void dots_q4_K(const BlockQ4_K* w, int64_t nb, const ActQ8_K* x, float* out) {
  __m256 acc[R];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ4_K& wb = w[b];
    uint8_t sc[8], mn[8];
    scales_mins_k4(wb.scales, sc, mn);
    const __m256i mins = min_pairs(mn);
    const float d = _cvtsh_ss(wb.d), dmin = _cvtsh_ss(wb.dmin);
    __m256i sumi[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) sumi[r] = _mm256_setzero_si256();
    for (int t = 0; t < 4; ++t) {
      const __m256i bits = load32(wb.qs + 32 * t);
      const __m256i ql = _mm256_and_si256(bits, low4);
      const __m256i qh = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
      const __m256i sl = _mm256_set1_epi16(sc[2 * t]), sh = _mm256_set1_epi16(sc[2 * t + 1]);
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const int8_t* q8 = x[r * nb + b].qs + 64 * t;
        const __m256i pl = _mm256_madd_epi16(sl, _mm256_maddubs_epi16(ql, load32(q8)));
        const __m256i ph = _mm256_madd_epi16(sh, _mm256_maddubs_epi16(qh, load32(q8 + 32)));
        sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(pl, ph));
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const ActQ8_K& a = x[r * nb + b];
      const __m256 summ = _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, bsums16(a)));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
      acc[r] = _mm256_fnmadd_ps(_mm256_set1_ps(a.d * dmin), summ, acc[r]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = hsum_ps(acc[r]);
}

// q6_K: 16 sub-blocks of 16, x = d sc_j (q - 32), q = 4 low bits (ql) | 2 high (qh).
template <int R>
inline void dots_q6_K(const BlockQ6_K* w, int64_t nb, const ActQ8_K* x, float* out) {
  __m256 acc[R];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(0x03);
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ6_K& wb = w[b];
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.scales)));
    const float d = _cvtsh_ss(wb.d);
    __m256i sumi[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) sumi[r] = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i l0 = load32(wb.ql + 64 * half), l1 = load32(wb.ql + 64 * half + 32);
      const __m256i h = load32(wb.qh + 32 * half);
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(h, low2), 4));
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, low4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), low2), 4));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), low2), 4));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), low2), 4));
      for (int i = 0; i < 4; ++i) {
        // Elements 128 half + 32 i + [0, 32): sub-blocks s and s + 1 (16 each).
        const int s = 8 * half + 2 * i;
        const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(wb.scales[s + 1]), _mm_set1_epi16(wb.scales[s]));
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const int8_t* q8 = x[r * nb + b].qs + 128 * half + 32 * i;
          const __m256i p = _mm256_maddubs_epi16(q[i], load32(q8));  // i16 lanes 0-7: first 16 elements
          sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(scale, p));
        }
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const ActQ8_K& a = x[r * nb + b];
      const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(scales16, bsums16(a)), 5);  // 32 sum sc_j bsums_j
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * d), _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[r], off)), acc[r]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = hsum_ps(acc[r]);
}

// q2_K: 16 sub-blocks of 16, x = d (sc_j & 15) q - dmin (sc_j >> 4), q 2 bits:
// elements 128 h + 32 j + [0, 32) are bits 2j of bytes qs[32 h, 32 h + 32).
template <int R>
inline void dots_q2_K(const BlockQ2_K* w, int64_t nb, const ActQ8_K* x, float* out) {
  __m256 acc[R];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const __m256i low2 = _mm256_set1_epi8(0x03);
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ2_K& wb = w[b];
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.scales));
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0x0F)));
    __m256i sumi[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) sumi[r] = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i bits = load32(wb.qs + 32 * h);
      for (int j = 0; j < 4; ++j) {
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), low2);
        const int s = 8 * h + 2 * j;
        const __m256i scale =
            _mm256_set_m128i(_mm_set1_epi16(wb.scales[s + 1] & 15), _mm_set1_epi16(wb.scales[s] & 15));
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const int8_t* q8 = x[r * nb + b].qs + 128 * h + 32 * j;
          sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(scale, _mm256_maddubs_epi16(q, load32(q8))));
        }
      }
    }
    const float d = _cvtsh_ss(wb.d), dmin = _cvtsh_ss(wb.dmin);
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const ActQ8_K& a = x[r * nb + b];
      const __m256 summ = _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, bsums16(a)));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
      acc[r] = _mm256_fnmadd_ps(_mm256_set1_ps(a.d * dmin), summ, acc[r]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = hsum_ps(acc[r]);
}

// q3_K: 16 sub-blocks of 16, x = d (sc_j - 32) (q - 4), q = 2 low bits (laid out as
// q2_K's) | the hmask bit 4 h + j of byte l as 4.
template <int R>
inline void dots_q3_K(const BlockQ3_K* w, int64_t nb, const ActQ8_K* x, float* out) {
  __m256 acc[R];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const __m256i low2 = _mm256_set1_epi8(0x03);
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ3_K& wb = w[b];
    int8_t sc[16];
    ggml_q3_K_scales(wb.scales, sc);
    for (int j = 0; j < 16; ++j) sc[j] = static_cast<int8_t>(sc[j] - 32);
    const __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    const __m256i hm = load32(wb.hmask);
    __m256i sumi[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) sumi[r] = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i bits = load32(wb.qs + 32 * h);
      for (int j = 0; j < 4; ++j) {
        const int bit = 4 * h + j;
        const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, bit), _mm256_set1_epi8(1));
        const __m256i q =
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), low2), _mm256_slli_epi16(hb, 2));
        const int s = 8 * h + 2 * j;
        const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(sc[s + 1]), _mm_set1_epi16(sc[s]));
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const int8_t* q8 = x[r * nb + b].qs + 128 * h + 32 * j;
          sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(scale, _mm256_maddubs_epi16(q, load32(q8))));
        }
      }
    }
    const float d = _cvtsh_ss(wb.d);
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const ActQ8_K& a = x[r * nb + b];
      const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(scales16, bsums16(a)), 2);  // 4 sum sc_j bsums_j
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * d), _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[r], off)), acc[r]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = hsum_ps(acc[r]);
}

// q5_K: q4_K's layout with a fifth bit: element 64 t + l (l < 32) takes bit 2t of
// qh[l], element 64 t + 32 + l bit 2t + 1.
template <int R>
inline void dots_q5_K(const BlockQ5_K* w, int64_t nb, const ActQ8_K* x, float* out) {
  __m256 acc[R];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const __m256i low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ5_K& wb = w[b];
    uint8_t sc[8], mn[8];
    scales_mins_k4(wb.scales, sc, mn);
    const __m256i mins = min_pairs(mn);
    const __m256i hbits = load32(wb.qh);
    __m256i sumi[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) sumi[r] = _mm256_setzero_si256();
    for (int t = 0; t < 4; ++t) {
      const __m256i bits = load32(wb.qs + 32 * t);
      const __m256i hl = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * t), one);
      const __m256i hh = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * t + 1), one);
      const __m256i ql = _mm256_or_si256(_mm256_and_si256(bits, low4), _mm256_slli_epi16(hl, 4));
      const __m256i qh = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), low4), _mm256_slli_epi16(hh, 4));
      const __m256i sl = _mm256_set1_epi16(sc[2 * t]), sh = _mm256_set1_epi16(sc[2 * t + 1]);
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const int8_t* q8 = x[r * nb + b].qs + 64 * t;
        const __m256i pl = _mm256_madd_epi16(sl, _mm256_maddubs_epi16(ql, load32(q8)));
        const __m256i ph = _mm256_madd_epi16(sh, _mm256_maddubs_epi16(qh, load32(q8 + 32)));
        sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(pl, ph));
      }
    }
    const float d = _cvtsh_ss(wb.d), dmin = _cvtsh_ss(wb.dmin);
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const ActQ8_K& a = x[r * nb + b];
      const __m256 summ = _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, bsums16(a)));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
      acc[r] = _mm256_fnmadd_ps(_mm256_set1_ps(a.d * dmin), summ, acc[r]);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = hsum_ps(acc[r]);
}

template <int R>
inline void dots(const PackedMatrix& W, int64_t n, int64_t nb, const ActQ8_K* x, float* out) {
  const uint8_t* row = W.row(n);
  switch (W.codec) {
    case WeightCodec::kQ2_K: return dots_q2_K<R>(reinterpret_cast<const BlockQ2_K*>(row), nb, x, out);
    case WeightCodec::kQ3_K: return dots_q3_K<R>(reinterpret_cast<const BlockQ3_K*>(row), nb, x, out);
    case WeightCodec::kQ4_K: return dots_q4_K<R>(reinterpret_cast<const BlockQ4_K*>(row), nb, x, out);
    case WeightCodec::kQ5_K: return dots_q5_K<R>(reinterpret_cast<const BlockQ5_K*>(row), nb, x, out);
    default: return dots_q6_K<R>(reinterpret_cast<const BlockQ6_K*>(row), nb, x, out);
  }
}

// ---- q4_K rows interleaved by 8 (kernels/codecs/ggml_interleaved.h) ----

// pshufb controls that copy byte s of each dword of a vector into both i16 halves
// of that dword (the other bytes zero): a sub-block's 8 row scales as madd's
// multipliers.
inline __m256i spread_control(int s) {
  const __m256i base = _mm256_set1_epi32(static_cast<int>(0x80008000u | static_cast<uint32_t>(s) | (static_cast<uint32_t>(s) << 16)));
  return _mm256_add_epi32(base, _mm256_setr_epi32(0, 0x40004, 0x80008, 0xC000C, 0, 0x40004, 0x80008, 0xC000C));
}

// R activation rows (x[r * nb + b]) against one q4_K row group: out[r] lane i =
// the dot with weight row i. Per sub-block of 32 the 8 chunk vectors (4 quants of
// each row) against 8 broadcast activation dwords, summed in i16 (8 * 2 * 15 * 128
// fits), then one madd with the 8 rows' scales; the mins against the activations'
// sums per 16 by madd as well.
template <int R>
inline void x8_dots_q4_K(const BlockQ4_Kx8* g, int64_t nb, const ActQ8_K* x, __m256* out) {
  const __m256i lo4 = _mm256_set1_epi8(0x0F), m3f = _mm256_set1_epi8(0x3F), m03 = _mm256_set1_epi8(0x03);
  const __m256i ctl[4] = {spread_control(0), spread_control(1), spread_control(2), spread_control(3)};
  __m256 acc[R];
  #pragma GCC unroll 4
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ4_Kx8& w = g[b];
    // Dword i of sc[0] / sc[1]: row i's scales 0-3 / 4-7; mn likewise (scales_mins_k4
    // on 8 rows at once).
    const __m256i u0 = load32(w.scales[0]), u1 = load32(w.scales[1]), u2 = load32(w.scales[2]);
    const __m256i sc[2] = {_mm256_and_si256(u0, m3f),
                           _mm256_or_si256(_mm256_and_si256(u2, lo4),
                                           _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u0, 6), m03), 4))};
    const __m256i mn[2] = {_mm256_and_si256(u1, m3f),
                           _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u2, 4), lo4),
                                           _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(u1, 6), m03), 4))};
    __m256i isum[R];
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
    #pragma GCC unroll 1
    for (int j = 0; j < 8; ++j) {  // sub-block j: nibble j & 1 of pair t = j / 2
      const uint8_t* qs = w.qs + 256 * (j / 2);
      __m256i q[8];
      #pragma GCC unroll 8
      for (int c = 0; c < 8; ++c) {
        const __m256i v = load32(qs + 32 * c);
        q[c] = _mm256_and_si256((j & 1) ? _mm256_srli_epi16(v, 4) : v, lo4);
      }
      const __m256i scale = _mm256_shuffle_epi8(sc[j / 4], ctl[j % 4]);
      #pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const int8_t* xs = x[r * nb + b].qs + 32 * j;
        int32_t xd[8];
        __builtin_memcpy(xd, xs, 32);
        __m256i s16 = _mm256_maddubs_epi16(q[0], _mm256_set1_epi32(xd[0]));
        #pragma GCC unroll 8
        for (int c = 1; c < 8; ++c) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(q[c], _mm256_set1_epi32(xd[c])));
        isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(s16, scale));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.d)));
    const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.dmin)));
    #pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const ActQ8_K& a = x[r * nb + b];
      int32_t bs[8];  // the sums per 16 in pairs: pair j is sub-block j's two
      __builtin_memcpy(bs, a.bsums, 32);
      __m256i msum = _mm256_setzero_si256();
      #pragma GCC unroll 8
      for (int j = 0; j < 8; ++j)
        msum = _mm256_add_epi32(msum, _mm256_madd_epi16(_mm256_shuffle_epi8(mn[j / 4], ctl[j % 4]), _mm256_set1_epi32(bs[j])));
      const __m256 da = _mm256_set1_ps(a.d);
      acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(isum[r]), acc[r]);
      acc[r] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, da), _mm256_cvtepi32_ps(msum), acc[r]);
    }
  }
  #pragma GCC unroll 4
  for (int r = 0; r < R; ++r) out[r] = acc[r];
}

// As linear_q8_0.cc's linear_x8, for q4_K: whole groups 4, 2, 1 activation rows at
// a time, a cut group computed whole and its rows in range kept, the row-major tail
// through the plain kernel.
void linear_x8_q4_K(const ActQ8_K* xq, int64_t m0, int64_t m1, const PackedMatrix& W, const float* bias, int64_t n0,
                    int64_t n1, float* y, int64_t ldy) {
  const int64_t nb = W.cols / 256;
  const int64_t grouped = W.rows / 8 * 8;
  for (int64_t g = n0 / 8 * 8; g < std::min(n1, grouped); g += 8) {
    const auto* w = reinterpret_cast<const BlockQ4_Kx8*>(W.row(g));
    const int64_t lo = std::max(n0, g) - g, hi = std::min(n1, g + 8) - g;
    alignas(32) float bb[8] = {};
    if (bias)
      for (int64_t i = lo; i < hi; ++i) bb[i] = bias[g + i];
    const __m256 b8 = _mm256_load_ps(bb);
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
      x8_dots_q4_K<4>(w, nb, xq + m * nb, out);
      for (int r = 0; r < 4; ++r) put(m + r, out[r]);
    }
    for (; m + 2 <= m1; m += 2) {
      x8_dots_q4_K<2>(w, nb, xq + m * nb, out);
      for (int r = 0; r < 2; ++r) put(m + r, out[r]);
    }
    for (; m < m1; ++m) {
      x8_dots_q4_K<1>(w, nb, xq + m * nb, out);
      put(m, out[0]);
    }
  }
  for (int64_t n = std::max(n0, grouped); n < n1; ++n) {
    const float b = bias ? bias[n] : 0.0f;
    for (int64_t m = m0; m < m1; ++m) {
      float out;
      dots<1>(W, n, nb, xq + m * nb, &out);
      y[m * ldy + n] = out + b;
    }
  }
}

}  // namespace

void linear_q8_K_avx2(const ActQ8_K* xq, int64_t rows, const PackedMatrix& W, const float* bias, int64_t n0,
                      int64_t n1, float* y, int64_t ldy) {
  const int64_t nb = W.cols / 256;
  constexpr int64_t kRowChunk = 64;  // activation rows (292 bytes per 256 inputs each) kept hot
  if (W.codec == WeightCodec::kQ4_K && W.interleave == kInterleaveRows) {
    for (int64_t m0 = 0; m0 < rows; m0 += kRowChunk)
      linear_x8_q4_K(xq, m0, std::min(rows, m0 + kRowChunk), W, bias, n0, n1, y, ldy);
    return;
  }
  for (int64_t m0 = 0; m0 < rows; m0 += kRowChunk) {
    const int64_t m1 = std::min(rows, m0 + kRowChunk);
    for (int64_t n = n0; n < n1; ++n) {
      const float b = bias ? bias[n] : 0.0f;
      float out[4];
      int64_t m = m0;
      for (; m + 4 <= m1; m += 4) {
        dots<4>(W, n, nb, xq + m * nb, out);
        for (int r = 0; r < 4; ++r) y[(m + r) * ldy + n] = out[r] + b;
      }
      for (; m < m1; ++m) {
        dots<1>(W, n, nb, xq + m * nb, out);
        y[m * ldy + n] = out[0] + b;
      }
    }
  }
}

}  // namespace gb::kernels::cpu

#pragma GCC pop_options

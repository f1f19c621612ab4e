// Attention over (row, head) items (kernels/cpu/attention.h).
#include "kernels/cpu/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace gb::kernels::cpu {

namespace {

typedef float v8f __attribute__((vector_size(32)));
typedef float v8fu __attribute__((vector_size(32), aligned(4)));

// a . b over n: eight partial sums (one vector) then the tail, so that the
// products do not wait on one another; always inlined into attention_range's
// clones below.
__attribute__((always_inline)) inline float dot(const float* a, const float* b, int64_t n) {
  v8f s = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    s += *reinterpret_cast<const v8fu*>(a + j) * *reinterpret_cast<const v8fu*>(b + j);
  float d = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  for (; j < n; ++j) d += a[j] * b[j];
  return d;
}

}  // namespace

// Compiled for AVX2+FMA (x86-64-v3) and generic x86-64, picked at load time.
// The query heads of one row that share a KV head (GQA) are taken together, up to
// kRun at a time, so that each key and value row is read once for all of them; the
// value sums are 8-wide vector FMAs into per-head accumulators (element j of a head
// sums its slots in slot order, one FMA each, as a scalar loop would).
__attribute__((target_clones("arch=x86-64-v3", "default")))
void attention_range(const float* q, int64_t q_stride, int64_t heads, int64_t kv_heads, int64_t head_dim,
                     const KvPlane& K, const KvPlane& V, int64_t len, const int64_t* visible, float scale, int64_t i0,
                     int64_t i1, float* out) {
  constexpr int64_t kRun = 8;
  const int64_t group = heads / kv_heads;
  const int64_t hd8 = head_dim & ~int64_t{7};
  std::vector<float> p(static_cast<size_t>(kRun * std::max<int64_t>(len, 1)));
  std::vector<float> acc(static_cast<size_t>(kRun * head_dim));
  for (int64_t i = i0; i < i1;) {
    const int64_t r = i / heads, h = i % heads, kvh = h / group;
    const int64_t n = std::min({kRun, (kvh + 1) * group - h, i1 - i});  // heads h .. h + n - 1
    const float* qh = q + r * q_stride + h * head_dim;
    const int64_t vis = visible[r];
    for (int64_t s = 0; s < vis; ++s) {
      const float* ks = reinterpret_cast<const float*>(K.slot(s)) + kvh * head_dim;
      for (int64_t g = 0; g < n; ++g) p[static_cast<size_t>(g * len + s)] = dot(qh + g * head_dim, ks, head_dim) * scale;
    }
    float inv[kRun];
    for (int64_t g = 0; g < n; ++g) {
      float* pg = p.data() + g * len;
      float mx = -INFINITY;
      for (int64_t s = 0; s < vis; ++s) mx = std::max(mx, pg[s]);
      float sum = 0;
      for (int64_t s = 0; s < vis; ++s) {
        pg[s] = std::exp(pg[s] - mx);
        sum += pg[s];
      }
      inv[g] = vis > 0 ? 1.0f / sum : 0.0f;
    }
    std::fill(acc.begin(), acc.begin() + n * head_dim, 0.0f);
    for (int64_t s = 0; s < vis; ++s) {
      const float* vs = reinterpret_cast<const float*>(V.slot(s)) + kvh * head_dim;
      for (int64_t g = 0; g < n; ++g) {
        const float ps = p[static_cast<size_t>(g * len + s)];
        float* a = acc.data() + g * head_dim;
        int64_t j = 0;
        for (; j < hd8; j += 8)
          *reinterpret_cast<v8fu*>(a + j) += ps * *reinterpret_cast<const v8fu*>(vs + j);
        for (; j < head_dim; ++j) a[j] += ps * vs[j];
      }
    }
    for (int64_t g = 0; g < n; ++g) {
      float* o = out + r * heads * head_dim + (h + g) * head_dim;
      const float* a = acc.data() + g * head_dim;
      for (int64_t j = 0; j < head_dim; ++j) o[j] = a[j] * inv[g];
    }
    i += n;
  }
}

namespace {

// ---- the AVX2+FMA+F16C products: 8 codes at a time, the scalar reference for a
// group's tail (fewer than 8 elements). ----

#define GB_AVX2 __attribute__((target("avx2,fma,f16c")))

// Codes j .. j+7 of a head (j a multiple of 8 within the head) as floats: q for
// int8, u - 8 for int4, the e4m3fn value / 256 for fp8 (the factor 256 goes into
// the scale).
GB_AVX2 inline __m256 codes8(KvElement e, const uint8_t* codes, int64_t j) {
  switch (e) {
    case KvElement::kInt4:
    case KvElement::kInt4G32: {
      uint32_t w;
      std::memcpy(&w, codes + j / 2, 4);
      const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
      const __m256i u = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(w)), shifts),
                                         _mm256_set1_epi32(15));
      return _mm256_sub_ps(_mm256_cvtepi32_ps(u), _mm256_set1_ps(8.0f));
    }
    case KvElement::kFp8: {
      // e4m3fn S.EEEE.MMM into f16 S.EEEEE.MMMMMMMMMM: sign to bit 15, the rest
      // shifted by 7 (the exponent biases differ by 8: a factor 2^-8).
      const __m128i b = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + j)));
      const __m128i h = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x80)), 8),
                                     _mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x7f)), 7));
      return _mm256_cvtph_ps(h);
    }
    default:
      return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + j))));
  }
}

GB_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

GB_AVX2 float dot_head_avx2(const KvSlotLayout& L, const float* q, const float* qsum, const uint8_t* slot,
                            int64_t h, const float* calib) {
  const uint8_t* codes = L.codes(slot, h);
  const int64_t G = L.group();
  const float code_scale = L.element == KvElement::kFp8 ? 256.0f : 1.0f;
  float total = 0;
  for (int64_t g = 0; g < L.groups_per_head(); ++g) {
    const KvGroupScale s = kv_group_scale(L, slot, h, g, calib);
    const int64_t j0 = g * G, j1 = std::min(j0 + G, L.head_dim);
    __m256 acc = _mm256_setzero_ps();
    int64_t j = j0;
    for (; j + 8 <= j1; j += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), codes8(L.element, codes, j), acc);
    float qc = hsum(acc) * code_scale;
    for (; j < j1; ++j) qc += q[j] * kv_code_value(L, codes, j);
    total += s.scale * qc + s.zero * qsum[g];
  }
  return total;
}

GB_AVX2 void axpy_head_avx2(const KvSlotLayout& L, float p, const uint8_t* slot, int64_t h, const float* calib,
                            float* acc) {
  const uint8_t* codes = L.codes(slot, h);
  const int64_t G = L.group();
  const float code_scale = L.element == KvElement::kFp8 ? 256.0f : 1.0f;
  for (int64_t g = 0; g < L.groups_per_head(); ++g) {
    const KvGroupScale s = kv_group_scale(L, slot, h, g, calib);
    const float ps = p * s.scale, pz = p * s.zero;
    const __m256 vps = _mm256_set1_ps(ps * code_scale), vpz = _mm256_set1_ps(pz);
    const int64_t j0 = g * G, j1 = std::min(j0 + G, L.head_dim);
    int64_t j = j0;
    for (; j + 8 <= j1; j += 8)
      _mm256_storeu_ps(acc + j, _mm256_fmadd_ps(vps, codes8(L.element, codes, j), _mm256_add_ps(_mm256_loadu_ps(acc + j), vpz)));
    for (; j < j1; ++j) acc[j] += ps * kv_code_value(L, codes, j) + pz;
  }
}

#undef GB_AVX2

}  // namespace

bool kv_avx2_supported() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         __builtin_cpu_supports("f16c");
  return ok;
}

KvIsa kv_best_isa() { return kv_avx2_supported() ? KvIsa::kAvx2 : KvIsa::kScalar; }

void kv_rope_table(int64_t len, int64_t rot_dim, const float* inv_freq, float* cs) {
  const int64_t half = rot_dim / 2;
  for (int64_t s = 0; s < len; ++s)
    for (int64_t i = 0; i < half; ++i) {
      // As rope_rotate_half: the angle rounded to f32 before cos and sin.
      const float angle = static_cast<float>(s) * inv_freq[i];
      cs[s * rot_dim + i] = std::cos(angle);
      cs[s * rot_dim + half + i] = std::sin(angle);
    }
}

void attention_packed_range(const float* q, int64_t q_stride, int64_t heads, const KvPackedPlanes& kv,
                            const float* rope_cs, int64_t rot_dim, const int64_t* visible, float scale, int64_t i0,
                            int64_t i1, float* out, KvIsa isa) {
  const KvSlotLayout& L = kv.layout;
  const int64_t head_dim = L.head_dim;
  const int64_t group = heads / L.heads;
  const bool avx2 = isa == KvIsa::kAvx2 && kv_avx2_supported();
  int64_t len = 0;
  for (int64_t i = i0; i < i1; ++i) len = std::max(len, visible[i / heads]);
  std::vector<float> p(static_cast<size_t>(len));
  std::vector<float> acc(static_cast<size_t>(head_dim)), key(static_cast<size_t>(head_dim));
  std::vector<float> qsum(static_cast<size_t>(L.groups_per_head()));
  const int64_t half = rot_dim / 2;
  for (int64_t i = i0; i < i1; ++i) {
    const int64_t r = i / heads, h = i % heads, kvh = h / group;
    const float* qh = q + r * q_stride + h * head_dim;
    const int64_t vis = visible[r];
    for (int64_t g = 0; g < L.groups_per_head(); ++g) {
      float s = 0;
      for (int64_t j = g * L.group(); j < std::min((g + 1) * L.group(), head_dim); ++j) s += qh[j];
      qsum[static_cast<size_t>(g)] = s;
    }
    float mx = -INFINITY;
    for (int64_t s = 0; s < vis; ++s) {
      const uint8_t* slot = kv.k.slot(s);
      float d;
      if (rope_cs != nullptr) {
        // Keys stored before RoPE: decode the head, rotate it to position s, dot.
        kv_dequantize_head(L, slot, kvh, kv.k_calib, key.data());
        const float* c = rope_cs + s * rot_dim;
        for (int64_t j = 0; j < half; ++j) {
          const float x1 = key[j], x2 = key[j + half];
          key[j] = x1 * c[j] - x2 * c[half + j];
          key[j + half] = x2 * c[j] + x1 * c[half + j];
        }
        d = 0;
        for (int64_t j = 0; j < head_dim; ++j) d += qh[j] * key[j];
      } else {
        d = avx2 ? dot_head_avx2(L, qh, qsum.data(), slot, kvh, kv.k_calib) : kv_dot_head(L, qh, slot, kvh, kv.k_calib);
      }
      p[s] = d * scale;
      mx = std::max(mx, p[s]);
    }
    float sum = 0;
    for (int64_t s = 0; s < vis; ++s) {
      p[s] = std::exp(p[s] - mx);
      sum += p[s];
    }
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t s = 0; s < vis; ++s) {
      const uint8_t* slot = kv.v.slot(s);
      if (avx2)
        axpy_head_avx2(L, p[s], slot, kvh, kv.v_calib, acc.data());
      else
        kv_axpy_head(L, p[s], slot, kvh, kv.v_calib, acc.data());
    }
    float* o = out + r * heads * head_dim + h * head_dim;
    const float inv = vis > 0 ? 1.0f / sum : 0.0f;
    for (int64_t j = 0; j < head_dim; ++j) o[j] = acc[j] * inv;
  }
}

}  // namespace gb::kernels::cpu

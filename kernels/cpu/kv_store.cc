// KV cache slots in and out (kernels/cpu/kv_store.h).
#include "kernels/cpu/kv_store.h"

#include <immintrin.h>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/rope.h"

namespace gb::kernels::cpu {
namespace {

// A slot of f16 or bf16 elements as f32, 8 at a time with F16C / AVX2 (exact: every
// f16 and bf16 value is an f32), the tail as load_kv_element does it.
__attribute__((target("avx2,fma,f16c"))) void widen_row_avx2(const uint8_t* src, KvElement e, int64_t n,
                                                              float* dst) {
  const uint16_t* h = reinterpret_cast<const uint16_t*>(src);
  int64_t j = 0;
  if (e == KvElement::kF16) {
    for (; j + 8 <= n; j += 8)
      _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + j))));
  } else {
    for (; j + 8 <= n; j += 8) {
      const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + j)));
      _mm256_storeu_ps(dst + j, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
  }
  for (; j < n; ++j) dst[j] = load_kv_element(src, e, j);
}

}  // namespace

void kv_store_rows(const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                   const KvPlane& kc, const KvPlane& vc, KvElement e, int64_t slot) {
  for (int64_t r = 0; r < n; ++r) {
    uint8_t* ks = kc.slot(slot + r);
    uint8_t* vs = vc.slot(slot + r);
    for (int64_t i = 0; i < kv_width; ++i) {
      store_kv_element(ks, e, i, k[r * row_stride + i]);
      store_kv_element(vs, e, i, v[r * row_stride + i]);
    }
  }
}

void kv_store_packed_rows(const float* k, const float* v, int64_t n, int64_t row_stride, const KvSlotLayout& L,
                          const KvPlane& kc, const KvPlane& vc, const float* k_calib, const float* v_calib,
                          int64_t slot) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t h = 0; h < L.heads; ++h) {
      kv_quantize_head(L, k + r * row_stride + h * L.head_dim, h, k_calib, kc.slot(slot + r));
      kv_quantize_head(L, v + r * row_stride + h * L.head_dim, h, v_calib, vc.slot(slot + r));
    }
}

void kv_load_rows(const KvPlane& kc, const KvPlane& vc, KvElement e, int64_t s0, int64_t s1, int64_t kv_width,
                  int64_t head_dim, int64_t rot_dim, const float* inv_freq, float* K, float* V) {
  const bool wide = (e == KvElement::kF16 || e == KvElement::kBF16) && kv_avx2_supported();
  for (int64_t s = s0; s < s1; ++s) {
    const uint8_t* ks = kc.slot(s);
    const uint8_t* vs = vc.slot(s);
    if (wide) {
      widen_row_avx2(ks, e, kv_width, K + s * kv_width);
      widen_row_avx2(vs, e, kv_width, V + s * kv_width);
    } else {
      for (int64_t i = 0; i < kv_width; ++i) {
        K[s * kv_width + i] = load_kv_element(ks, e, i);
        V[s * kv_width + i] = load_kv_element(vs, e, i);
      }
    }
    if (rot_dim > 0)
      for (int64_t h = 0; h < kv_width / head_dim; ++h) rope_rotate_half(&K[s * kv_width + h * head_dim], s, rot_dim, inv_freq);
  }
}

}  // namespace gb::kernels::cpu

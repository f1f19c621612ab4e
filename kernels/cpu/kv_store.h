// Writing new keys and values into KV cache slots, converted to the cache's element
// (kernels/codecs/kv_element.h) or quantized into packed slots
// (kernels/codecs/kv_quant.h), and reading f32/f16/bf16 slots back as f32. The
// planes are addressed slot by slot (KvPlane, kernels/codecs/kv_cache_view.h), so a
// paged cache and a contiguous one take the same calls.
#pragma once

#include <cstdint>

#include "kernels/codecs/kv_cache_view.h"
#include "kernels/codecs/kv_element.h"
#include "kernels/codecs/kv_quant.h"

namespace gb::kernels::cpu {

// Rows [0, n) of k and v ([n, kv_width] at row stride `row_stride` floats) into
// slots [slot, slot + n) of the cache planes kc and vc (slots of kv_width elements
// `e`, an f32, f16 or bf16 element).
void kv_store_rows(const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                   const KvPlane& kc, const KvPlane& vc, KvElement e, int64_t slot);

// The same into packed slots of layout L (a quantized element): each row's heads
// quantized with their own scales (int8-calib: the plane's calibration, [heads][2]
// scale and zero point for K and for V).
void kv_store_packed_rows(const float* k, const float* v, int64_t n, int64_t row_stride, const KvSlotLayout& L,
                          const KvPlane& kc, const KvPlane& vc, const float* k_calib, const float* v_calib,
                          int64_t slot);

// Slots [s0, s1) of the cache planes (f32, f16 or bf16) as f32 into K and V
// ([slots, kv_width], row s at s * kv_width). rot_dim > 0: the keys are stored
// unrotated (streaming caches) and key slot s is rotated to position s (each of the
// kv_width / head_dim heads).
void kv_load_rows(const KvPlane& kc, const KvPlane& vc, KvElement e, int64_t s0, int64_t s1, int64_t kv_width,
                  int64_t head_dim, int64_t rot_dim, const float* inv_freq, float* K, float* V);

}  // namespace gb::kernels::cpu

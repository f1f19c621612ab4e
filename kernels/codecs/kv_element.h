// The elements a KV cache stores, and converting one element to and from f32, for
// the host and the device alike (header-only C++17, no engine includes). The
// quantized elements (int8, fp8, int4 with per-(token, head) scales, int8 with
// calibrated per-(layer, head) scales) are packed per cache slot:
// kernels/codecs/kv_quant.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/codecs/float16.h"
#include "kernels/codecs/host_device.h"

namespace gb::kernels {

enum class KvElement : uint8_t { kF32, kF16, kBF16, kInt8, kFp8, kInt4, kInt4G32, kInt8Calib };

GB_HOST_DEVICE constexpr bool kv_element_quantized(KvElement e) {
  return e != KvElement::kF32 && e != KvElement::kF16 && e != KvElement::kBF16;
}

// Bytes of one f32/f16/bf16 element (the quantized elements have a slot layout
// instead: kv_slot_bytes in kernels/codecs/kv_quant.h).
GB_HOST_DEVICE constexpr size_t kv_element_size(KvElement e) { return e == KvElement::kF32 ? 4 : 2; }

// Element i of a cache buffer of `e` elements (f32, f16 or bf16), as f32.
GB_HOST_DEVICE inline float load_kv_element(const void* base, KvElement e, int64_t i) {
  switch (e) {
    case KvElement::kF32: return static_cast<const float*>(base)[i];
    case KvElement::kF16: return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
    case KvElement::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
    default: break;
  }
  return 0;
}

// Stores v as element i of a cache buffer of `e` elements (f32, f16 or bf16;
// rounded to nearest even).
GB_HOST_DEVICE inline void store_kv_element(void* base, KvElement e, int64_t i, float v) {
  switch (e) {
    case KvElement::kF32: static_cast<float*>(base)[i] = v; break;
    case KvElement::kF16: static_cast<uint16_t*>(base)[i] = f32_to_f16(v); break;
    case KvElement::kBF16: static_cast<uint16_t*>(base)[i] = f32_to_bf16(v); break;
    default: break;
  }
}

}  // namespace gb::kernels

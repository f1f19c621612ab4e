// KvDecoder: the packed KV slot of kernels/codecs/kv_quant.h with its offsets worked
// out once (on the host) instead of per element, so that the device loops do no
// 64-bit division: codes and meta of head h, the scale of group g (as kv_group_scale),
// an element as f32 (as kv_dequantize_head; f32/f16/bf16 as load_kv_element). Every
// offset equals KvSlotLayout's (tests/cuda/attention/kv_decoder_test.cc checks that on
// the host for every element and several shapes). Header-only, host and device.
// Not a quantizer (kv_store.cu uses kv_quant.h's helpers) nor a fast decoder.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/codecs/host_device.h"
#include "kernels/codecs/kv_element.h"
#include "kernels/codecs/kv_quant.h"

namespace gb::kernels::cuda {

struct KvDecoder {
  KvSlotLayout layout;
  int32_t head_dim = 0;
  int32_t group = 0;            // elements per scale group
  int32_t groups_per_head = 0;
  int32_t meta_bytes_per_group = 0;
  int64_t meta_bytes = 0;       // the slot's meta block, before the codes
  int64_t head_code_bytes = 0;
  int64_t slot_bytes = 0;

  GB_HOST_DEVICE static KvDecoder of(const KvSlotLayout& L) {
    KvDecoder d;
    d.layout = L;
    d.head_dim = static_cast<int32_t>(L.head_dim);
    d.group = static_cast<int32_t>(L.group());
    d.groups_per_head = static_cast<int32_t>(L.groups_per_head());
    d.meta_bytes_per_group = static_cast<int32_t>(L.meta_bytes_per_group());
    d.meta_bytes = static_cast<int64_t>(L.meta_bytes());
    d.head_code_bytes = static_cast<int64_t>(L.head_code_bytes());
    d.slot_bytes = static_cast<int64_t>(L.slot_bytes());
    return d;
  }

  // The group of element j (< head_dim): int4-g32 groups are 32 wide (a head of at
  // most 32 elements is one group, and j / 32 is 0 there too); the others are one
  // group per head.
  GB_HOST_DEVICE int32_t group_of(int32_t j) const {
    return layout.element == KvElement::kInt4G32 ? j / static_cast<int32_t>(kKvInt4Group) : 0;
  }
  GB_HOST_DEVICE const uint8_t* codes(const uint8_t* slot, int32_t h) const {
    return slot + meta_bytes + static_cast<int64_t>(h) * head_code_bytes;
  }
  GB_HOST_DEVICE uint8_t* codes(uint8_t* slot, int32_t h) const {
    return slot + meta_bytes + static_cast<int64_t>(h) * head_code_bytes;
  }
  GB_HOST_DEVICE const uint8_t* meta(const uint8_t* slot, int32_t h, int32_t g) const {
    return slot + static_cast<int64_t>(h * groups_per_head + g) * meta_bytes_per_group;
  }
  GB_HOST_DEVICE uint8_t* meta(uint8_t* slot, int32_t h, int32_t g) const {
    return slot + static_cast<int64_t>(h * groups_per_head + g) * meta_bytes_per_group;
  }
  // As kv_group_scale (kernels/codecs/kv_quant.h).
  GB_HOST_DEVICE KvGroupScale scale(const uint8_t* slot, int32_t h, int32_t g, const float* calib) const {
    KvGroupScale s;
    if (layout.element == KvElement::kInt8Calib) {
      s.scale = calib[2 * h];
      s.zero = calib[2 * h + 1];
      return s;
    }
    const uint8_t* m = meta(slot, h, g);
    s.scale = f16_to_f32(kv_load_u16(m));
    if (layout.element != KvElement::kFp8) s.zero = f16_to_f32(kv_load_u16(m + 2));
    return s;
  }
  // Element j of a quantized head from the head's codes and the scale of j's group,
  // as kv_dequantize_head: zero + scale * code (the caller looks the scale up once per
  // group).
  GB_HOST_DEVICE float dequantize(const uint8_t* head_codes, int32_t j, const KvGroupScale& s) const {
    return s.zero + s.scale * kv_code_value(layout, head_codes, j);
  }
  // Element j of head h as f32: dequantize() with its group's scale, or
  // load_kv_element for f32/f16/bf16.
  GB_HOST_DEVICE float value(const uint8_t* slot, int32_t h, int32_t j, const float* calib) const {
    const uint8_t* c = codes(slot, h);
    if (!kv_element_quantized(layout.element)) return load_kv_element(c, layout.element, j);
    return dequantize(c, j, scale(slot, h, group_of(j), calib));
  }
};

}  // namespace gb::kernels::cuda

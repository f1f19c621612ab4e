// KvCacheView: the device mirror of engine::KvLayerView (engine/backend/backend.h),
// the same fields with the same meaning, every pointer device memory. One layer's
// view of one sequence's KV cache: slots [0, len) are valid; each slot holds
// kv_heads x head_dim keys (plane k) and values (plane v) in `element`, f32/f16/bf16
// elements ([slots, kv_heads * head_dim]) or a quantized element packed per slot
// with its scales (kernels/codecs/kv_quant.h). keys_unrotated: the keys are stored
// before RoPE (the streaming policy) and attention rotates key slot s to position s.
// int8-calib: k_calib and v_calib are the layer's [kv_heads][2] (scale, zero point).
// Not the cache's policy or its memory (the CUDA backend owns both).
#pragma once

#include <cstdint>

#include "kernels/codecs/kv_element.h"
#include "kernels/codecs/kv_quant.h"

namespace gb::kernels::cuda {

struct KvCacheView {
  void* k = nullptr;
  void* v = nullptr;
  int64_t len = 0;
  KvElement element = KvElement::kF32;
  bool keys_unrotated = false;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  const float* k_calib = nullptr;
  const float* v_calib = nullptr;
  // The slot layout of either plane (f32/f16/bf16 included: no meta, the elements as codes).
  KvSlotLayout layout() const { return {element, kv_heads, head_dim}; }
};

}  // namespace gb::kernels::cuda

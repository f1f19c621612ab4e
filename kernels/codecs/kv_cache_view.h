// KvCacheView: one layer's view of one sequence's KV cache, as attention and
// kv_store read it on every backend (engine::KvLayerView in engine/backend/backend.h
// and kernels::cuda::KvCacheView are this struct). Slots [0, len) are valid; each
// slot holds kv_heads x head_dim keys (plane k) and values (plane v) in `element`:
// f32/f16/bf16 elements ([slots, kv_heads * head_dim]) or a quantized element packed
// per slot with its scales (kernels/codecs/kv_quant.h). The pointers are the
// backend's memory (device memory on a GPU backend). keys_unrotated: the keys are
// stored before RoPE (the streaming policy) and attention rotates key slot s to
// position s. int8-calib: k_calib and v_calib are the layer's [kv_heads][2] (scale,
// zero point) of K and of V. Not the cache's policy or its memory (engine/model/
// kv_cache.h owns both).
#pragma once

#include <cstdint>

#include "kernels/codecs/host_device.h"
#include "kernels/codecs/kv_element.h"
#include "kernels/codecs/kv_quant.h"

namespace gb::kernels {

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
  GB_HOST_DEVICE KvSlotLayout layout() const { return {element, kv_heads, head_dim}; }
};

}  // namespace gb::kernels

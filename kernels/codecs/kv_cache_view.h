// KvCacheView: one layer's view of one sequence's KV cache, as attention and
// kv_store read it on every backend (engine::KvLayerView in engine/backend/backend.h
// and kernels::cuda::KvCacheView are this struct). Slots [0, len) are valid; each
// slot holds kv_heads x head_dim keys (plane k) and values (plane v) in `element`:
// f32/f16/bf16 elements (a slot is kv_heads * head_dim of them) or a quantized
// element packed per slot with its scales (kernels/codecs/kv_quant.h). The pointers
// are the backend's memory (device memory on a GPU backend). keys_unrotated: the
// keys are stored before RoPE (the streaming policy) and attention rotates key slot
// s to position s. int8-calib: k_calib and v_calib are the layer's [kv_heads][2]
// (scale, zero point) of K and of V. Not the cache's policy or its memory
// (engine/kv/kv_cache.h owns both).
//
// Where the slots are: either contiguous (pages == nullptr: slot s of the keys at
// k + s * slot_bytes) or in pages of 2^page_shift slots (a paged cache grown page
// by page: slot s of the keys at pages[s >> page_shift] + k_offset +
// (s mod 2^page_shift) * slot_bytes, the values at v_offset; `pages` is a table in
// the backend's memory, one entry per page, which holds every layer's keys and
// values of its slots). Kernels reach a slot through KvPlane::slot and never
// assume two slots of different pages adjacent.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/codecs/host_device.h"
#include "kernels/codecs/kv_element.h"
#include "kernels/codecs/kv_quant.h"

namespace gb::kernels {

// One plane (the keys or the values of one layer) as the kernels address it.
struct KvPlane {
  uint8_t* base = nullptr;           // contiguous planes
  uint8_t* const* pages = nullptr;   // paged planes (non-null)
  int64_t offset = 0;                // paged: the plane's byte offset within each page
  int32_t page_shift = 0;            // paged: 2^page_shift slots a page
  size_t slot_bytes = 0;

  GB_HOST_DEVICE static KvPlane contiguous(void* base, size_t slot_bytes) {
    KvPlane p;
    p.base = static_cast<uint8_t*>(base);
    p.slot_bytes = slot_bytes;
    return p;
  }
  GB_HOST_DEVICE bool valid() const { return pages != nullptr || base != nullptr; }
  GB_HOST_DEVICE uint8_t* slot(int64_t s) const {
    if (pages == nullptr) return base + static_cast<size_t>(s) * slot_bytes;
    const int64_t mask = (int64_t{1} << page_shift) - 1;
    return pages[s >> page_shift] + offset + static_cast<size_t>(s & mask) * slot_bytes;
  }
};

struct KvCacheView {
  void* k = nullptr;  // contiguous caches
  void* v = nullptr;
  uint8_t* const* pages = nullptr;  // paged caches (then k and v are null)
  int32_t page_shift = 0;
  int64_t k_offset = 0;
  int64_t v_offset = 0;
  int64_t len = 0;
  KvElement element = KvElement::kF32;
  bool keys_unrotated = false;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  const float* k_calib = nullptr;
  const float* v_calib = nullptr;
  // The slot layout of either plane (f32/f16/bf16 included: no meta, the elements as codes).
  GB_HOST_DEVICE KvSlotLayout layout() const { return {element, kv_heads, head_dim}; }
  GB_HOST_DEVICE KvPlane k_plane() const { return plane(k, k_offset); }
  GB_HOST_DEVICE KvPlane v_plane() const { return plane(v, v_offset); }

 private:
  GB_HOST_DEVICE KvPlane plane(void* base, int64_t offset) const {
    KvPlane p;
    p.base = pages == nullptr ? static_cast<uint8_t*>(base) : nullptr;
    p.pages = pages;
    p.offset = offset;
    p.page_shift = page_shift;
    p.slot_bytes = layout().slot_bytes();
    return p;
  }
};

}  // namespace gb::kernels

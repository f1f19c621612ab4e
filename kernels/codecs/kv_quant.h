// The packed KV-cache slot: how one cached token's keys (or values) of every KV head
// are laid out in each KV element, and the reference quantizer, dequantizer and
// fused dot product / weighted accumulation that every attention kernel is checked
// against. For the host and the device alike (header-only C++17, no engine
// includes). Not the cache's policy (engine/kv/kv_cache.h) nor a fast kernel
// (kernels/cpu/attention.cc).
//
// A slot (one token, one of the K or V planes of one layer) is
//   [meta: heads x groups_per_head x meta bytes][codes: heads x head code bytes]
// where a group is the elements of one head that share a scale: the whole head
// (int8, fp8, int4: per token and head) or 32 elements (int4-g32; the last group of
// a head whose head_dim is not a multiple of 32 is shorter). Codes and meta:
//
//   element    codes per element            meta per group           x =
//   f32/f16/bf16  the element (4 / 2 bytes)  -                        the element
//   int8       int8 q in [-128, 127]         f16 scale s, f16 zero z  z + s q
//   int4       4 bits u, element 2i in the   f16 scale s, f16 zero z  z + s (u - 8)
//   int4-g32   low nibble of byte i
//   fp8        e4m3fn code c                 f16 scale s              s fp8(c)
//   int8-calib int8 q                        - (s, z per layer and    z + s q
//                                              head: the calibration)
//
// The asymmetric elements use reference 002's rule, computed online per group
// (int8, int4) or read from a calibration (int8-calib): z = (min + max) / 2,
// s = (max - min) / 255 (int8) or / 15 (int4); q = round((x - z) / s), clamped.
// Online, z is rounded to f16 first and s taken over the half range around it
// (the same s unless z's rounding moved it), rounded up to f16, so every code
// stays within half a step of its value.
// fp8 scales by s = absmax / 448 (e4m3fn's largest finite value). Meta is stored
// little-endian byte by byte, so a slot needs no alignment.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/codecs/float16.h"
#include "kernels/codecs/fp8.h"
#include "kernels/codecs/host_device.h"
#include "kernels/codecs/kv_element.h"

namespace gb::kernels {

inline constexpr int64_t kKvInt4Group = 32;  // int4-g32

struct KvSlotLayout {
  KvElement element = KvElement::kF32;
  int64_t heads = 0;     // KV heads
  int64_t head_dim = 0;

  // Elements of one head that share a scale (the last group of a head may be shorter).
  GB_HOST_DEVICE int64_t group() const {
    return element == KvElement::kInt4G32 && head_dim > kKvInt4Group ? kKvInt4Group : head_dim;
  }
  GB_HOST_DEVICE int64_t groups_per_head() const { return (head_dim + group() - 1) / group(); }
  GB_HOST_DEVICE size_t meta_bytes_per_group() const {
    switch (element) {
      case KvElement::kInt8:
      case KvElement::kInt4:
      case KvElement::kInt4G32: return 4;
      case KvElement::kFp8: return 2;
      default: return 0;
    }
  }
  GB_HOST_DEVICE size_t head_code_bytes() const {
    switch (element) {
      case KvElement::kF32: return static_cast<size_t>(head_dim) * 4;
      case KvElement::kF16:
      case KvElement::kBF16: return static_cast<size_t>(head_dim) * 2;
      case KvElement::kInt4:
      case KvElement::kInt4G32: return static_cast<size_t>(head_dim + 1) / 2;
      default: return static_cast<size_t>(head_dim);
    }
  }
  GB_HOST_DEVICE size_t meta_bytes() const {
    return static_cast<size_t>(heads * groups_per_head()) * meta_bytes_per_group();
  }
  // Every byte one token takes in one plane (K or V) of one layer.
  GB_HOST_DEVICE size_t slot_bytes() const { return meta_bytes() + static_cast<size_t>(heads) * head_code_bytes(); }

  GB_HOST_DEVICE const uint8_t* codes(const uint8_t* slot, int64_t h) const {
    return slot + meta_bytes() + static_cast<size_t>(h) * head_code_bytes();
  }
  GB_HOST_DEVICE uint8_t* codes(uint8_t* slot, int64_t h) const {
    return slot + meta_bytes() + static_cast<size_t>(h) * head_code_bytes();
  }
  GB_HOST_DEVICE const uint8_t* meta(const uint8_t* slot, int64_t h, int64_t g) const {
    return slot + static_cast<size_t>(h * groups_per_head() + g) * meta_bytes_per_group();
  }
  GB_HOST_DEVICE uint8_t* meta(uint8_t* slot, int64_t h, int64_t g) const {
    return slot + static_cast<size_t>(h * groups_per_head() + g) * meta_bytes_per_group();
  }
};

// One group's scale and zero point as the decoder uses them (fp8: zero is 0).
struct KvGroupScale {
  float scale = 0;
  float zero = 0;
};

GB_HOST_DEVICE inline uint16_t kv_load_u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (static_cast<uint16_t>(p[1]) << 8));
}
GB_HOST_DEVICE inline void kv_store_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xff);
  p[1] = static_cast<uint8_t>(v >> 8);
}

// The scale of group g of head h. calib: [heads][2] (scale, zero) of this plane
// for int8-calib, ignored otherwise.
GB_HOST_DEVICE inline KvGroupScale kv_group_scale(const KvSlotLayout& L, const uint8_t* slot, int64_t h, int64_t g,
                                                   const float* calib) {
  KvGroupScale s;
  if (L.element == KvElement::kInt8Calib) {
    s.scale = calib[2 * h];
    s.zero = calib[2 * h + 1];
    return s;
  }
  const uint8_t* m = L.meta(slot, h, g);
  s.scale = f16_to_f32(kv_load_u16(m));
  if (L.element != KvElement::kFp8) s.zero = f16_to_f32(kv_load_u16(m + 2));
  return s;
}

// The integer code of element j of a head as a float: q (int8), u - 8 (int4);
// fp8: its e4m3fn value.
GB_HOST_DEVICE inline float kv_code_value(const KvSlotLayout& L, const uint8_t* codes, int64_t j) {
  switch (L.element) {
    case KvElement::kInt8:
    case KvElement::kInt8Calib: return static_cast<float>(static_cast<int8_t>(codes[j]));
    case KvElement::kInt4:
    case KvElement::kInt4G32: {
      const uint8_t b = codes[j / 2];
      return static_cast<float>(((j & 1) ? (b >> 4) : (b & 15))) - 8.0f;
    }
    case KvElement::kFp8: return fp8_e4m3_to_f32(codes[j]);
    default: return 0;
  }
}

GB_HOST_DEVICE inline float kv_round(float v) { return floorf(v + 0.5f); }

// A scale >= 0 as f16, rounded up (so that the codes cover the range they scale).
GB_HOST_DEVICE inline uint16_t kv_scale_f16_up(float s) {
  uint16_t h = f32_to_f16(s);
  if (f16_to_f32(h) < s && h < 0x7bff) ++h;  // the next f16 up (positive, finite)
  return h;
}

// Quantizes head h of one token, x[0, head_dim), into `slot` (its meta and codes).
// calib as in kv_group_scale.
GB_HOST_DEVICE inline void kv_quantize_head(const KvSlotLayout& L, const float* x, int64_t h, const float* calib,
                                            uint8_t* slot) {
  uint8_t* codes = L.codes(slot, h);
  const int64_t G = L.group();
  const bool int4 = L.element == KvElement::kInt4 || L.element == KvElement::kInt4G32;
  if (int4)
    for (size_t b = 0; b < L.head_code_bytes(); ++b) codes[b] = 0;
  for (int64_t g = 0; g < L.groups_per_head(); ++g) {
    const int64_t j0 = g * G, j1 = j0 + G < L.head_dim ? j0 + G : L.head_dim;
    if (L.element == KvElement::kFp8) {
      float amax = 0;
      for (int64_t j = j0; j < j1; ++j) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
      const uint16_t sh = kv_scale_f16_up(amax / kFp8E4m3Max);
      kv_store_u16(L.meta(slot, h, g), sh);
      const float s = f16_to_f32(sh);
      for (int64_t j = j0; j < j1; ++j) codes[j] = s > 0 ? f32_to_fp8_e4m3(x[j] / s) : 0;
      continue;
    }
    float s, z;
    if (L.element == KvElement::kInt8Calib) {
      s = calib[2 * h];
      z = calib[2 * h + 1];
    } else {
      float mn = x[j0], mx = x[j0];
      for (int64_t j = j0; j < j1; ++j) {
        mn = x[j] < mn ? x[j] : mn;
        mx = x[j] > mx ? x[j] : mx;
      }
      // z rounded to f16 first, then s from the half range around the stored z, so
      // that an offset group (a range far from 0) is still covered by its codes.
      const uint16_t zh = f32_to_f16(0.5f * mn + 0.5f * mx);
      z = f16_to_f32(zh);
      const float half = mx - z > z - mn ? mx - z : z - mn;
      const uint16_t sh = kv_scale_f16_up(half / (int4 ? 7.5f : 127.5f));
      kv_store_u16(L.meta(slot, h, g), sh);
      kv_store_u16(L.meta(slot, h, g) + 2, zh);
      s = f16_to_f32(sh);
    }
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    const float lo = int4 ? -8.0f : -128.0f, hi = int4 ? 7.0f : 127.0f;
    for (int64_t j = j0; j < j1; ++j) {
      float q = kv_round((x[j] - z) * inv);
      q = q < lo ? lo : (q > hi ? hi : q);
      if (int4)
        codes[j / 2] |= static_cast<uint8_t>(static_cast<int>(q + 8.0f) << ((j & 1) * 4));
      else
        codes[j] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
  }
}

// Head h of a slot as f32 into out[0, head_dim): the reference decoder.
GB_HOST_DEVICE inline void kv_dequantize_head(const KvSlotLayout& L, const uint8_t* slot, int64_t h,
                                              const float* calib, float* out) {
  const uint8_t* codes = L.codes(slot, h);
  const int64_t G = L.group();
  for (int64_t g = 0; g < L.groups_per_head(); ++g) {
    const KvGroupScale s = kv_group_scale(L, slot, h, g, calib);
    const int64_t j0 = g * G, j1 = j0 + G < L.head_dim ? j0 + G : L.head_dim;
    for (int64_t j = j0; j < j1; ++j) out[j] = s.zero + s.scale * kv_code_value(L, codes, j);
  }
}

// q . (head h of the slot), dequantizing on the fly: per group
// s * sum(q_j c_j) + z * sum(q_j). The reference of the fused dot product.
GB_HOST_DEVICE inline float kv_dot_head(const KvSlotLayout& L, const float* q, const uint8_t* slot, int64_t h,
                                        const float* calib) {
  const uint8_t* codes = L.codes(slot, h);
  const int64_t G = L.group();
  float total = 0;
  for (int64_t g = 0; g < L.groups_per_head(); ++g) {
    const KvGroupScale s = kv_group_scale(L, slot, h, g, calib);
    const int64_t j0 = g * G, j1 = j0 + G < L.head_dim ? j0 + G : L.head_dim;
    float qc = 0, qs = 0;
    for (int64_t j = j0; j < j1; ++j) {
      qc += q[j] * kv_code_value(L, codes, j);
      qs += q[j];
    }
    total += s.scale * qc + s.zero * qs;
  }
  return total;
}

// acc[j] += p * (head h of the slot)[j], dequantizing on the fly:
// acc[j] += (p s) c_j + p z. The reference of the fused value accumulation.
GB_HOST_DEVICE inline void kv_axpy_head(const KvSlotLayout& L, float p, const uint8_t* slot, int64_t h,
                                        const float* calib, float* acc) {
  const uint8_t* codes = L.codes(slot, h);
  const int64_t G = L.group();
  for (int64_t g = 0; g < L.groups_per_head(); ++g) {
    const KvGroupScale s = kv_group_scale(L, slot, h, g, calib);
    const float ps = p * s.scale, pz = p * s.zero;
    const int64_t j0 = g * G, j1 = j0 + G < L.head_dim ? j0 + G : L.head_dim;
    for (int64_t j = j0; j < j1; ++j) acc[j] += ps * kv_code_value(L, codes, j) + pz;
  }
}

}  // namespace gb::kernels

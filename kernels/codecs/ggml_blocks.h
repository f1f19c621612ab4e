// GGUF (ggml) block formats: the packed block of each quantized type, with a
// static_assert on its size, and its dequantizer, for the host and the device
// alike. The layouts and the arithmetic of the dequantizers follow llama.cpp's
// ggml-common.h and dequantize_row_* (ggml-quants.c) operation for operation, so
// that the values are bit-identical with llama.cpp's; the reference quantizers are
// kernels/quantize/ggml_quantize.h.
//
//   type   elems  bytes  layout
//   q8_0     32     34   f16 d, int8 q[32]                       x = d q
//   q4_0     32     18   f16 d, 16 bytes of nibbles              x = d (q - 8)
//   q4_1     32     20   f16 d, f16 m, nibbles                   x = d q + m
//   q5_0     32     22   f16 d, u32 high bits, nibbles           x = d (q - 16)
//   q5_1     32     24   f16 d, f16 m, u32 high bits, nibbles    x = d q + m
//   q2_k    256     84   4-bit scale|min per 16, 2-bit q, f16 d, dmin
//   q3_k    256    110   high-bit mask, 2-bit q, 6-bit scales per 16, f16 d
//   q4_k    256    144   f16 d, dmin, 6-bit scale/min per 32, 4-bit q
//   q5_k    256    176   f16 d, dmin, 6-bit scale/min per 32, high bits, 4-bit q
//   q6_k    256    210   4-bit low q, 2-bit high q, int8 scale per 16, f16 d
// In q4_0/q4_1/q5_* element j of a block is the low nibble of byte j and element
// j + 16 its high nibble.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/codecs/float16.h"
#include "kernels/codecs/host_device.h"

namespace gb::kernels {

inline constexpr int kQK = 32;    // elements per block of the simple types
inline constexpr int kQK_K = 256;  // elements per superblock of the K types

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34, "q8_0 block");

struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "q4_0 block");

struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 20, "q4_1 block");

struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_0) == 22, "q5_0 block");

struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_1) == 24, "q5_1 block");

struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];  // low nibble scale, high nibble min, per 16
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84, "q2_K block");

struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];  // 16 6-bit scales
  uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110, "q3_K block");

struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];  // 8 6-bit scales and 8 6-bit mins
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144, "q4_K block");

struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176, "q5_K block");

struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210, "q6_K block");

// The 6-bit scale and min j (0..7) of a q4_K / q5_K block.
GB_HOST_DEVICE inline void ggml_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

GB_HOST_DEVICE inline void dequantize_q8_0(const BlockQ8_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK; ++j) y[j] = b.qs[j] * d;
}

GB_HOST_DEVICE inline void dequantize_q4_0(const BlockQ4_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = (b.qs[j] & 0x0F) - 8;
    const int x1 = (b.qs[j] >> 4) - 8;
    y[j] = x0 * d;
    y[j + kQK / 2] = x1 * d;
  }
}

GB_HOST_DEVICE inline void dequantize_q4_1(const BlockQ4_1& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float m = f16_to_f32(b.m);
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = b.qs[j] & 0x0F;
    const int x1 = b.qs[j] >> 4;
    y[j] = x0 * d + m;
    y[j + kQK / 2] = x1 * d + m;
  }
}

GB_HOST_DEVICE inline uint32_t ggml_load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

GB_HOST_DEVICE inline void dequantize_q5_0(const BlockQ5_0& b, float* y) {
  const float d = f16_to_f32(b.d);
  const uint32_t qh = ggml_load_u32(b.qh);
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t xh0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
    const uint8_t xh1 = static_cast<uint8_t>(((qh >> (j + 12))) & 0x10);
    const int32_t x0 = ((b.qs[j] & 0x0F) | xh0) - 16;
    const int32_t x1 = ((b.qs[j] >> 4) | xh1) - 16;
    y[j] = x0 * d;
    y[j + kQK / 2] = x1 * d;
  }
}

GB_HOST_DEVICE inline void dequantize_q5_1(const BlockQ5_1& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float m = f16_to_f32(b.m);
  const uint32_t qh = ggml_load_u32(b.qh);
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t xh0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
    const uint8_t xh1 = static_cast<uint8_t>(((qh >> (j + 12))) & 0x10);
    const int x0 = (b.qs[j] & 0x0F) | xh0;
    const int x1 = (b.qs[j] >> 4) | xh1;
    y[j] = x0 * d + m;
    y[j + kQK / 2] = x1 * d + m;
  }
}

GB_HOST_DEVICE inline void dequantize_q2_K(const BlockQ2_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float min = f16_to_f32(b.dmin);
  const uint8_t* q = b.qs;
  int is = 0;
  for (int n = 0; n < kQK_K; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      uint8_t sc = b.scales[is++];
      float dl = d * (sc & 0xF), ml = min * (sc >> 4);
      for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<int8_t>((q[l] >> shift) & 3) - ml;
      sc = b.scales[is++];
      dl = d * (sc & 0xF);
      ml = min * (sc >> 4);
      for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<int8_t>((q[l + 16] >> shift) & 3) - ml;
      shift += 2;
    }
    q += 32;
  }
}

// The 16 signed 6-bit scales of a q3_K block (stored offset by 32).
GB_HOST_DEVICE inline void ggml_q3_K_scales(const uint8_t* packed, int8_t* scales) {
  constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  uint32_t aux[4];
  aux[0] = ggml_load_u32(packed);
  aux[1] = ggml_load_u32(packed + 4);
  aux[2] = ggml_load_u32(packed + 8);
  const uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  for (int i = 0; i < 4; ++i)
    for (int k = 0; k < 4; ++k) scales[4 * i + k] = static_cast<int8_t>((aux[i] >> (8 * k)) & 0xff);
}

GB_HOST_DEVICE inline void dequantize_q3_K(const BlockQ3_K& b, float* y) {
  const float d_all = f16_to_f32(b.d);
  int8_t scales[16];
  ggml_q3_K_scales(b.scales, scales);
  const uint8_t* q = b.qs;
  const uint8_t* hm = b.hmask;
  uint8_t m = 1;
  int is = 0;
  for (int n = 0; n < kQK_K; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      float dl = d_all * (scales[is++] - 32);
      for (int l = 0; l < 16; ++l)
        *y++ = dl * (static_cast<int8_t>((q[l + 0] >> shift) & 3) - ((hm[l + 0] & m) ? 0 : 4));
      dl = d_all * (scales[is++] - 32);
      for (int l = 0; l < 16; ++l)
        *y++ = dl * (static_cast<int8_t>((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
      shift += 2;
      m = static_cast<uint8_t>(m << 1);
    }
    q += 32;
  }
}

GB_HOST_DEVICE inline void dequantize_q4_K(const BlockQ4_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float min = f16_to_f32(b.dmin);
  const uint8_t* q = b.qs;
  int is = 0;
  uint8_t sc, m;
  for (int j = 0; j < kQK_K; j += 64) {
    ggml_scale_min_k4(is + 0, b.scales, &sc, &m);
    const float d1 = d * sc, m1 = min * m;
    ggml_scale_min_k4(is + 1, b.scales, &sc, &m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}

GB_HOST_DEVICE inline void dequantize_q5_K(const BlockQ5_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  const float min = f16_to_f32(b.dmin);
  const uint8_t* ql = b.qs;
  const uint8_t* qh = b.qh;
  int is = 0;
  uint8_t sc, m;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < kQK_K; j += 64) {
    ggml_scale_min_k4(is + 0, b.scales, &sc, &m);
    const float d1 = d * sc, m1 = min * m;
    ggml_scale_min_k4(is + 1, b.scales, &sc, &m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    ql += 32;
    is += 2;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

GB_HOST_DEVICE inline void dequantize_q6_K(const BlockQ6_K& b, float* y) {
  const float d = f16_to_f32(b.d);
  const uint8_t* ql = b.ql;
  const uint8_t* qh = b.qh;
  const int8_t* sc = b.scales;
  for (int n = 0; n < kQK_K; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int8_t q1 = static_cast<int8_t>(((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
      const int8_t q2 = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
      const int8_t q3 = static_cast<int8_t>(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      const int8_t q4 = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      y[l + 0] = d * sc[is + 0] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace gb::kernels

// The quantizers of one group of a weight matrix, for the host and the device alike:
// the int8/fp8 codes of one element against a scale, the f16 scale of an int8/fp8
// group, an int4 group with its scale and zero point, a bitsandbytes NF4/FP4 block
// and its absmax, and the GGUF blocks q8_0, q4_0, q4_1, q5_0 and q5_1 (llama.cpp's
// quantize_row_*_ref, written again from the algorithms). Each reads its elements
// through x(k), k in [0, n): the host quantizers (kernels/quantize/) pass an array,
// the backends that draw synthetic weights in their own memory pass the draw
// (kernels/codecs/synthetic_value.h), so that both give the same bytes.
//
// Bit for bit on both sides: every operation is one IEEE f32 operation as written
// (no fused multiply-add: a translation unit of nvcc that calls these is compiled
// with --fmad=false; the host compiles ISO C++, which does not contract), division
// and the roundings (rint: nearest even; round: half away from zero) are exact.
// The K types' superblocks are kernels/codecs/ggml_quantize_k.h.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/codecs/bnb4.h"
#include "kernels/codecs/float16.h"
#include "kernels/codecs/fp8.h"
#include "kernels/codecs/ggml_blocks.h"
#include "kernels/codecs/host_device.h"
#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels {

GB_HOST_DEVICE inline float quant_abs(float x) { return f32_from_bits(f32_bits(x) & 0x7fffffffu); }

// Round to nearest, ties to even (the default rounding mode's nearbyint).
GB_HOST_DEVICE inline float quant_rint(float x) {
#if defined(__CUDA_ARCH__)
  return rintf(x);
#else
  return std::nearbyint(x);
#endif
}

// Round to nearest, ties away from zero (C's roundf).
GB_HOST_DEVICE inline float quant_round(float x) {
#if defined(__CUDA_ARCH__)
  return roundf(x);
#else
  return std::round(x);
#endif
}

// The square root, correctly rounded (nvcc's default -prec-sqrt=true on the device).
GB_HOST_DEVICE inline float quant_sqrt(float x) {
#if defined(__CUDA_ARCH__)
  return sqrtf(x);
#else
  return std::sqrt(x);
#endif
}

// std::clamp(v, lo, hi) as the standard defines it (a NaN passes through).
GB_HOST_DEVICE inline float quant_clamp(float v, float lo, float hi) { return v < lo ? lo : (hi < v ? hi : v); }

// max |x(k)|, k < n (0 for n = 0).
template <class X>
GB_HOST_DEVICE float group_absmax(X x, int64_t n) {
  float a = 0.0f;
  for (int64_t k = 0; k < n; ++k) {
    const float v = quant_abs(x(k));
    if (a < v) a = v;
  }
  return a;
}

// The largest code magnitude of symmetric int8 (127) and of fp8 e4m3 (448).
GB_HOST_DEVICE inline float symmetric_qmax(WeightCodec codec) {
  return codec == WeightCodec::kInt8 ? 127.0f : kFp8E4m3Max;
}

// The int8 code (round half even, clamped to [-127, 127]) or the fp8 e4m3 code
// (saturating) of v times inv (inv = 1 / scale, or 0 for a zero scale).
GB_HOST_DEVICE inline uint8_t symmetric_code(WeightCodec codec, float v, float inv) {
  if (codec == WeightCodec::kInt8)
    return static_cast<uint8_t>(static_cast<int8_t>(quant_clamp(quant_rint(v * inv), -127.0f, 127.0f)));
  return f32_to_fp8_e4m3(v * inv);
}

GB_HOST_DEVICE inline float symmetric_inverse(float scale) { return scale > 0 ? 1.0f / scale : 0.0f; }

// One int8/fp8 group of n elements: its scale, rounded to the f16 it is stored as
// (the codes are made against the stored scale), written at *scale_f16, and its codes.
template <class X>
GB_HOST_DEVICE void quantize_symmetric_group(WeightCodec codec, X x, int64_t n, uint16_t* scale_f16, uint8_t* codes) {
  const uint16_t h = f32_to_f16(group_absmax(x, n) / symmetric_qmax(codec));
  *scale_f16 = h;
  const float inv = symmetric_inverse(f16_to_f32(h));
  for (int64_t k = 0; k < n; ++k) codes[k] = symmetric_code(codec, x(k), inv);
}

// One asymmetric int4 group of n elements starting at element e0 of a row whose codes
// are `row` (two per byte, element 2i in the low nibble; ORed into zeroed bytes):
// s = (max - min) / 15 over a range that includes 0, zero point z = round(-min / s)
// in [0, 15], q = clamp(round(x / s) + z, 0, 15); s and z stored as f16.
template <class X>
GB_HOST_DEVICE void quantize_int4_group(X x, int64_t n, int64_t e0, uint8_t* row, uint16_t* scale_f16,
                                        uint16_t* zero_f16) {
  float mn = x(0), mx = x(0);
  for (int64_t k = 1; k < n; ++k) {
    const float v = x(k);
    mn = v < mn ? v : mn;  // std::min(mn, v)
    mx = mx < v ? v : mx;  // std::max(mx, v)
  }
  mn = 0.0f < mn ? 0.0f : mn;  // the range includes 0, so that 0 is exact
  mx = mx < 0.0f ? 0.0f : mx;
  float scale = (mx - mn) / 15.0f;
  if (!(scale > 0)) scale = 1.0f;
  const uint16_t hs = f32_to_f16(scale);
  scale = f16_to_f32(hs);
  const float zero = quant_clamp(quant_rint(-mn / scale), 0.0f, 15.0f);
  *scale_f16 = hs;
  *zero_f16 = f32_to_f16(zero);
  for (int64_t k = 0; k < n; ++k) {
    const int code = static_cast<int>(quant_clamp(quant_rint(x(k) / scale) + zero, 0.0f, 15.0f));
    const int64_t e = e0 + k;
    row[e / 2] = static_cast<uint8_t>(row[e / 2] | ((e & 1) ? code << 4 : code));
  }
}

// The NF4 / FP4 code of a value already scaled into [-1, 1]: the nearest table value
// (the first on a tie). FP4: the magnitude's nearest code with the sign bit for
// x < 0, except that a value that rounds to zero is code 8 (-0) when positive and 0
// when negative, as bitsandbytes' CPU path stores it.
GB_HOST_DEVICE inline uint8_t bnb_nf4_code(float x) {
  uint8_t best = 0;
  float best_d = quant_abs(x - nf4_value(0));
  for (int i = 1; i < 16; ++i) {
    const float d = quant_abs(x - nf4_value(static_cast<uint8_t>(i)));
    if (d < best_d) {
      best_d = d;
      best = static_cast<uint8_t>(i);
    }
  }
  return best;
}

GB_HOST_DEVICE inline uint8_t bnb_fp4_code(float x) {
  const float a = quant_abs(x);
  uint8_t m = 0;
  float best_d = quant_abs(a - fp4_value(0));
  for (int i = 1; i < 8; ++i) {
    const float d = quant_abs(a - fp4_value(static_cast<uint8_t>(i)));
    if (d < best_d) {
      best_d = d;
      m = static_cast<uint8_t>(i);
    }
  }
  if (m == 0) return x > 0 ? 8 : 0;
  return x < 0 ? static_cast<uint8_t>(m | 8) : m;
}

// One bitsandbytes 4-bit block of n (even) elements: codes[n / 2] (element 2i in the
// high nibble) of x / absmax; returns the absmax.
template <class X>
GB_HOST_DEVICE float quantize_bnb4_block(bool nf4, X x, int64_t n, uint8_t* codes) {
  const float amax = group_absmax(x, n);
  const float inv = 1.0f / amax;
  for (int64_t k = 0; k < n; k += 2) {
    const float a = quant_clamp(x(k) * inv, -1.0f, 1.0f);
    const float c = quant_clamp(x(k + 1) * inv, -1.0f, 1.0f);
    const uint8_t qa = nf4 ? bnb_nf4_code(a) : bnb_fp4_code(a);
    const uint8_t qc = nf4 ? bnb_nf4_code(c) : bnb_fp4_code(c);
    codes[k / 2] = static_cast<uint8_t>(qa << 4 | qc);
  }
  return amax;
}

// ---- GGUF blocks of 32 ----

// The value of largest magnitude of x(0..n-1) (the first of equal magnitudes; 0
// when all are 0), and its magnitude in *amax.
template <class X>
GB_HOST_DEVICE float signed_absmax(X x, int64_t n, float* amax) {
  float a = 0.0f, max = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    const float v = x(j);
    if (a < quant_abs(v)) {
      a = quant_abs(v);
      max = v;
    }
  }
  *amax = a;
  return max;
}
template <class X>
GB_HOST_DEVICE float ggml_signed_absmax(X x) {
  float amax;
  return signed_absmax(x, kQK, &amax);
}

template <class X>
GB_HOST_DEVICE void ggml_min_max(X x, float* min, float* max) {
  *min = 3.402823466e+38f;  // FLT_MAX
  *max = -3.402823466e+38f;
  for (int j = 0; j < kQK; ++j) {
    const float v = x(j);
    if (v < *min) *min = v;
    if (v > *max) *max = v;
  }
}

template <class X>
GB_HOST_DEVICE void quantize_block_q8_0(X x, BlockQ8_0& y) {
  const float d = group_absmax(x, kQK) / 127;
  const float id = d ? 1.0f / d : 0.0f;
  y.d = f32_to_f16(d);
  for (int j = 0; j < kQK; ++j) y.qs[j] = static_cast<int8_t>(quant_round(x(j) * id));
}

// A 4- or 5-bit code: min(top, int(int8(v))) with v = x * id + offset, the product
// rounded before the sum.
GB_HOST_DEVICE inline uint8_t ggml_low_code(float v, int top) {
  const int q = static_cast<int>(static_cast<int8_t>(v));
  return static_cast<uint8_t>(q < top ? q : top);
}

template <class X>
GB_HOST_DEVICE void quantize_block_q4_0(X x, BlockQ4_0& y) {
  const float d = ggml_signed_absmax(x) / -8;
  const float id = d ? 1.0f / d : 0.0f;
  y.d = f32_to_f16(d);
  for (int j = 0; j < kQK / 2; ++j) {
    const float x0 = x(j) * id, x1 = x(kQK / 2 + j) * id;
    y.qs[j] = static_cast<uint8_t>(ggml_low_code(x0 + 8.5f, 15) | ggml_low_code(x1 + 8.5f, 15) << 4);
  }
}

template <class X>
GB_HOST_DEVICE void quantize_block_q4_1(X x, BlockQ4_1& y) {
  float min, max;
  ggml_min_max(x, &min, &max);
  const float d = (max - min) / 15;
  const float id = d ? 1.0f / d : 0.0f;
  y.d = f32_to_f16(d);
  y.m = f32_to_f16(min);
  for (int j = 0; j < kQK / 2; ++j) {
    const float x0 = (x(j) - min) * id, x1 = (x(kQK / 2 + j) - min) * id;
    y.qs[j] = static_cast<uint8_t>(ggml_low_code(x0 + 0.5f, 15) | ggml_low_code(x1 + 0.5f, 15) << 4);
  }
}

GB_HOST_DEVICE inline void ggml_put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

template <class X>
GB_HOST_DEVICE void quantize_block_q5_0(X x, BlockQ5_0& y) {
  const float d = ggml_signed_absmax(x) / -16;
  const float id = d ? 1.0f / d : 0.0f;
  y.d = f32_to_f16(d);
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const float x0 = x(j) * id, x1 = x(kQK / 2 + j) * id;
    const uint8_t q0 = ggml_low_code(x0 + 16.5f, 31), q1 = ggml_low_code(x1 + 16.5f, 31);
    y.qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
    qh |= ((q0 & 0x10u) >> 4) << (j + 0);
    qh |= ((q1 & 0x10u) >> 4) << (j + kQK / 2);
  }
  ggml_put_u32(y.qh, qh);
}

template <class X>
GB_HOST_DEVICE void quantize_block_q5_1(X x, BlockQ5_1& y) {
  float min, max;
  ggml_min_max(x, &min, &max);
  const float d = (max - min) / 31;
  const float id = d ? 1.0f / d : 0.0f;
  y.d = f32_to_f16(d);
  y.m = f32_to_f16(min);
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const float x0 = (x(j) - min) * id, x1 = (x(kQK / 2 + j) - min) * id;
    const uint8_t q0 = static_cast<uint8_t>(x0 + 0.5f), q1 = static_cast<uint8_t>(x1 + 0.5f);
    y.qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
    qh |= ((q0 & 0x10u) >> 4) << (j + 0);
    qh |= ((q1 & 0x10u) >> 4) << (j + kQK / 2);
  }
  ggml_put_u32(y.qh, qh);
}

// True for the GGUF codecs whose block quantizer is above (q8_0, q4_0, q4_1, q5_0, q5_1).
GB_HOST_DEVICE constexpr bool is_simple_ggml_codec(WeightCodec c) {
  return c == WeightCodec::kQ8_0 || c == WeightCodec::kQ4_0 || c == WeightCodec::kQ4_1 || c == WeightCodec::kQ5_0 ||
         c == WeightCodec::kQ5_1;
}

// Block `b` of 32 elements x(0..31) of a simple GGUF codec, written at out (the
// block's bytes).
template <class X>
GB_HOST_DEVICE void quantize_simple_ggml_block(WeightCodec codec, X x, uint8_t* out) {
  switch (codec) {
    case WeightCodec::kQ8_0: quantize_block_q8_0(x, *reinterpret_cast<BlockQ8_0*>(out)); break;
    case WeightCodec::kQ4_0: quantize_block_q4_0(x, *reinterpret_cast<BlockQ4_0*>(out)); break;
    case WeightCodec::kQ4_1: quantize_block_q4_1(x, *reinterpret_cast<BlockQ4_1*>(out)); break;
    case WeightCodec::kQ5_0: quantize_block_q5_0(x, *reinterpret_cast<BlockQ5_0*>(out)); break;
    case WeightCodec::kQ5_1: quantize_block_q5_1(x, *reinterpret_cast<BlockQ5_1*>(out)); break;
    default: break;
  }
}

}  // namespace gb::kernels

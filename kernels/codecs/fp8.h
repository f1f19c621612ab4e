// float8 e4m3fn (OCP FP8 E4M3, "fn": finite, no infinities; S.EEEE.MMM, bias 7,
// max 448, 0x7f/0xff are NaN) <-> binary32, for the host and the device alike.
// Encoding saturates (values beyond +-448 become +-448, as torch's
// float8_e4m3fn casts with saturation and torchao's quantizers do after clamping)
// and rounds to nearest even; NaN stays NaN.
#pragma once

#include <cstdint>

#include "kernels/codecs/float16.h"
#include "kernels/codecs/host_device.h"

namespace gb::kernels {

inline constexpr float kFp8E4m3Max = 448.0f;

// e4m3fn -> f32, exact. Shifting the code into an f16 bit pattern keeps sign,
// exponent and mantissa in place (subnormals included); the two exponent biases
// differ by 8, hence the factor 2^8.
GB_HOST_DEVICE inline float fp8_e4m3_to_f32(uint8_t b) {
  if ((b & 0x7f) == 0x7f) return f32_from_bits(0x7fc00000u);  // NaN
  const uint16_t h = static_cast<uint16_t>((b & 0x80u) << 8 | (b & 0x7fu) << 7);
  return f16_to_f32(h) * 256.0f;
}

// f32 -> e4m3fn, round to nearest even, saturating at +-448.
GB_HOST_DEVICE inline uint8_t f32_to_fp8_e4m3(float f) {
  const uint32_t u = f32_bits(f);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t au = u & 0x7fffffffu;
  if (au > 0x7f800000u) return static_cast<uint8_t>(sign | 0x7f);  // NaN
  const float a = f32_from_bits(au);
  if (!(a < kFp8E4m3Max)) return static_cast<uint8_t>(sign | 0x7e);  // saturate (inf included)
  // Smallest normal is 2^-6; below it the step is 2^-9 (subnormals).
  if (a < 0.015625f) {
    // Round a / 2^-9 to an integer, nearest even: 0..8 (8 = the smallest normal).
    const float q = a * 512.0f;
    uint32_t n = static_cast<uint32_t>(q);
    const float rem = q - static_cast<float>(n);
    if (rem > 0.5f || (rem == 0.5f && (n & 1u))) ++n;
    return static_cast<uint8_t>(sign | n);  // n == 8 is exponent 1, mantissa 0: correct
  }
  // Normal: keep 3 mantissa bits of the f32, round to nearest even.
  const int32_t e = static_cast<int32_t>(au >> 23) - 127 + 7;  // 1..15
  uint32_t mant = au & 0x7fffffu;
  uint32_t r = static_cast<uint32_t>(e) << 3 | mant >> 20;
  const uint32_t rem = mant & 0xfffffu;
  if (rem > 0x80000u || (rem == 0x80000u && (r & 1u))) ++r;
  if (r > 0x7eu) r = 0x7eu;  // rounding up past 448 saturates
  return static_cast<uint8_t>(sign | r);
}

}  // namespace gb::kernels

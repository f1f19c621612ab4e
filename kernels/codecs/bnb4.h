// bitsandbytes 4-bit codes (NF4 and FP4) as bitsandbytes stores them: a flattened
// tensor in blocks (64 by default), one absmax per block, each element a 4-bit code
// into a 16-value table scaled by the absmax; two codes per byte, the first element
// in the high nibble. For the host and the device alike.
//
// NF4 is the table of QLoRA (Dettmers et al. 2023, appendix E): quantiles of N(0, 1)
// normalised to [-1, 1], exactly as bitsandbytes' kernels hold it. FP4 is
// bitsandbytes' e2m1 variant, ordered as its dequantizer's decision tree reads the
// code (sign in bit 3). The reference quantizers are kernels/quantize/bnb_quantize.h.
#pragma once

#include <cstdint>

#include "kernels/codecs/host_device.h"

namespace gb::kernels {

GB_HOST_DEVICE inline float nf4_value(uint8_t code) {
  constexpr float kNf4[16] = {-1.0f,
                              -0.6961928009986877f,
                              -0.5250730514526367f,
                              -0.39491748809814453f,
                              -0.28444138169288635f,
                              -0.18477343022823334f,
                              -0.09105003625154495f,
                              0.0f,
                              0.07958029955625534f,
                              0.16093020141124725f,
                              0.24611230194568634f,
                              0.33791524171829224f,
                              0.44070982933044434f,
                              0.5626170039176941f,
                              0.7229568362236023f,
                              1.0f};
  return kNf4[code & 15];
}

GB_HOST_DEVICE inline float fp4_value(uint8_t code) {
  constexpr float kFp4[8] = {0.0f, 0.005208333333f, 0.66666667f, 1.0f, 0.33333333f, 0.5f, 0.16666667f, 0.25f};
  const float v = kFp4[code & 7];
  return (code & 8) ? -v : v;
}

}  // namespace gb::kernels

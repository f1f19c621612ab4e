// The compute dtype of a linear layer (bitsandbytes' bnb_4bit_compute_dtype, the
// `compute` job parameter): the precision its inputs and its dequantized weights are
// rounded to before the products, which still accumulate in f32. f32 is no rounding;
// bf16 and f16 round each value to nearest even (float16.h). Only the enum, its
// names and the rounding of one value: the kernels that use it are the backends'
// (kernels/cpu/matmul.h's linear_range_rounded). Header-only C++17, for the host and
// the device alike.
#pragma once

#include <cstdint>

#include "kernels/codecs/float16.h"
#include "kernels/codecs/host_device.h"

namespace gb::kernels {

enum class ComputeDtype : uint8_t { kF32, kBf16, kF16 };

inline const char* compute_dtype_name(ComputeDtype d) {
  switch (d) {
    case ComputeDtype::kF32: return "f32";
    case ComputeDtype::kBf16: return "bf16";
    case ComputeDtype::kF16: return "f16";
  }
  return "?";
}

// v rounded to `d` and widened back to f32.
GB_HOST_DEVICE inline float round_to_compute_dtype(float v, ComputeDtype d) {
  switch (d) {
    case ComputeDtype::kBf16: return bf16_to_f32(f32_to_bf16(v));
    case ComputeDtype::kF16: return f16_to_f32(f32_to_f16(v));
    case ComputeDtype::kF32: break;
  }
  return v;
}

}  // namespace gb::kernels

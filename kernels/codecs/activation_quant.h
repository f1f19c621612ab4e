// How a linear layer's activations are quantized at run time, beside its weight
// codec (packed_matrix.h): not at all (f32), per token to int8 or fp8 e4m3 (W8A8,
// SmoothQuant's scheme), or LLM.int8()'s decomposition (int8 per token, with the
// input columns holding an outlier kept in float). Only the enum and its names:
// the quantizers and kernels are the backends' (kernels/cpu/packed/activations_w8a8.h).
// Header-only C++17, for the host and the device alike.
#pragma once

#include <cstdint>

namespace gb::kernels {

enum class ActivationQuant : uint8_t { kNone, kInt8, kFp8, kLlmInt8 };

// LLM.int8()'s default outlier threshold (bitsandbytes' llm_int8_threshold).
inline constexpr float kLlmInt8DefaultThreshold = 6.0f;

inline const char* activation_quant_name(ActivationQuant a) {
  switch (a) {
    case ActivationQuant::kNone: return "f32";
    case ActivationQuant::kInt8: return "int8";
    case ActivationQuant::kFp8: return "fp8";
    case ActivationQuant::kLlmInt8: return "llm.int8";
  }
  return "?";
}

}  // namespace gb::kernels

// Activation quantization for the q8 mode (kernels/cpu/packed/activations_q8.h):
// plain loops, compiled for AVX2 and generic x86-64 (target_clones); a linear op
// quantizes its activations once, before its rows are split across threads.
#include "kernels/cpu/packed/activations_q8.h"

#include <cmath>

namespace gb::kernels::cpu {

const char* activation_mode_name(ActivationMode m) { return m == ActivationMode::kQ8 ? "q8" : "f32"; }

int q8_activation_block(WeightCodec c) {
  switch (c) {
    case WeightCodec::kQ8_0:
    case WeightCodec::kQ4_0:
    case WeightCodec::kQ4_1:
    case WeightCodec::kQ5_0:
    case WeightCodec::kQ5_1: return 32;
    case WeightCodec::kQ2_K:
    case WeightCodec::kQ3_K:
    case WeightCodec::kQ4_K:
    case WeightCodec::kQ5_K:
    case WeightCodec::kQ6_K: return 256;
    default: return 0;
  }
}

namespace {

// qs[0, n) = round(x / d), d = absmax / 127; returns d.
__attribute__((target_clones("arch=x86-64-v3", "default")))
float quantize_block(const float* x, int n, int8_t* qs) {
  float amax = 0.0f;
  for (int k = 0; k < n; ++k) amax = std::fmax(amax, std::fabs(x[k]));
  const float d = amax / 127.0f;
  const float id = d > 0.0f ? 1.0f / d : 0.0f;
  for (int k = 0; k < n; ++k) qs[k] = static_cast<int8_t>(std::nearbyint(x[k] * id));
  return d;
}

}  // namespace

void quantize_activations_q8_0(const float* x, int64_t rows, int64_t cols, std::vector<ActQ8_0>* out) {
  const int64_t nb = cols / 32;
  out->resize(static_cast<size_t>(rows * nb));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      ActQ8_0& a = (*out)[static_cast<size_t>(r * nb + b)];
      a.d = quantize_block(x + r * cols + b * 32, 32, a.qs);
      int sum = 0;
      for (int k = 0; k < 32; ++k) sum += a.qs[k];
      a.s = a.d * static_cast<float>(sum);
    }
  }
}

void quantize_activations_q8_K(const float* x, int64_t rows, int64_t cols, std::vector<ActQ8_K>* out) {
  const int64_t nb = cols / 256;
  out->resize(static_cast<size_t>(rows * nb));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      ActQ8_K& a = (*out)[static_cast<size_t>(r * nb + b)];
      a.d = quantize_block(x + r * cols + b * 256, 256, a.qs);
      for (int j = 0; j < 16; ++j) {
        int sum = 0;
        for (int k = 0; k < 16; ++k) sum += a.qs[16 * j + k];
        a.bsums[j] = static_cast<int16_t>(sum);
      }
    }
  }
}

void QuantizedActivations::prepare(WeightCodec c) {
  const int block = q8_activation_block(c);
  if (block == 32 && !has_q8_0) {
    quantize_activations_q8_0(x, rows, cols, &q8_0);
    has_q8_0 = true;
  } else if (block == 256 && !has_q8_K) {
    quantize_activations_q8_K(x, rows, cols, &q8_K);
    has_q8_K = true;
  }
}

}  // namespace gb::kernels::cpu

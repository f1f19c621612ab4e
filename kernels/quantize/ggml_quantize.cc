// llama.cpp's reference quantizers of the simple block types (q8_0, q4_0, q4_1,
// q5_0, q5_1) and the row dispatch (kernels/quantize/ggml_quantize.h). The K types
// are kernels/quantize/ggml_quantize_k.cc.
#include "kernels/quantize/ggml_quantize.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

namespace gb::kernels {

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[i * kQK + j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[i * kQK + j] * id));
  }
}

// The value of largest magnitude (the first of equal magnitudes) and that magnitude.
static void signed_absmax(const float* x, int n, float* amax, float* max) {
  *amax = 0.0f;
  *max = 0.0f;
  for (int j = 0; j < n; ++j)
    if (*amax < std::fabs(x[j])) {
      *amax = std::fabs(x[j]);
      *max = x[j];
    }
}

static void min_max(const float* x, int n, float* min, float* max) {
  *min = FLT_MAX;
  *max = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < *min) *min = x[j];
    if (x[j] > *max) *max = x[j];
  }
}

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float* xb = x + i * kQK;
    float amax, max;
    signed_absmax(xb, kQK, &amax, &max);
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const float x0 = xb[j] * id, x1 = xb[kQK / 2 + j] * id;
      const uint8_t q0 = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 8.5f))));
      const uint8_t q1 = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 8.5f))));
      y[i].qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
    }
  }
}

void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float* xb = x + i * kQK;
    float min, max;
    min_max(xb, kQK, &min, &max);
    const float d = (max - min) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    y[i].m = f32_to_f16(min);
    for (int j = 0; j < kQK / 2; ++j) {
      const float x0 = (xb[j] - min) * id, x1 = (xb[kQK / 2 + j] - min) * id;
      const uint8_t q0 = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 0.5f))));
      const uint8_t q1 = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 0.5f))));
      y[i].qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
    }
  }
}

static void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float* xb = x + i * kQK;
    float amax, max;
    signed_absmax(xb, kQK, &amax, &max);
    const float d = max / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const float x0 = xb[j] * id, x1 = xb[kQK / 2 + j] * id;
      const uint8_t q0 = static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x0 + 16.5f))));
      const uint8_t q1 = static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(x1 + 16.5f))));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= ((q0 & 0x10u) >> 4) << (j + 0);
      qh |= ((q1 & 0x10u) >> 4) << (j + kQK / 2);
    }
    put_u32(y[i].qh, qh);
  }
}

void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float* xb = x + i * kQK;
    float min, max;
    min_max(xb, kQK, &min, &max);
    const float d = (max - min) / 31;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    y[i].m = f32_to_f16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const float x0 = (xb[j] - min) * id, x1 = (xb[kQK / 2 + j] - min) * id;
      const uint8_t q0 = static_cast<uint8_t>(x0 + 0.5f);
      const uint8_t q1 = static_cast<uint8_t>(x1 + 0.5f);
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= ((q0 & 0x10u) >> 4) << (j + 0);
      qh |= ((q1 & 0x10u) >> 4) << (j + kQK / 2);
    }
    put_u32(y[i].qh, qh);
  }
}

void ggml_quantize_row(WeightCodec codec, const float* x, uint8_t* out, int64_t k) {
  switch (codec) {
    case WeightCodec::kQ8_0: quantize_row_q8_0(x, reinterpret_cast<BlockQ8_0*>(out), k); break;
    case WeightCodec::kQ4_0: quantize_row_q4_0(x, reinterpret_cast<BlockQ4_0*>(out), k); break;
    case WeightCodec::kQ4_1: quantize_row_q4_1(x, reinterpret_cast<BlockQ4_1*>(out), k); break;
    case WeightCodec::kQ5_0: quantize_row_q5_0(x, reinterpret_cast<BlockQ5_0*>(out), k); break;
    case WeightCodec::kQ5_1: quantize_row_q5_1(x, reinterpret_cast<BlockQ5_1*>(out), k); break;
    case WeightCodec::kQ2_K: quantize_row_q2_K(x, reinterpret_cast<BlockQ2_K*>(out), k); break;
    case WeightCodec::kQ3_K: quantize_row_q3_K(x, reinterpret_cast<BlockQ3_K*>(out), k); break;
    case WeightCodec::kQ4_K: quantize_row_q4_K(x, reinterpret_cast<BlockQ4_K*>(out), k); break;
    case WeightCodec::kQ5_K: quantize_row_q5_K(x, reinterpret_cast<BlockQ5_K*>(out), k); break;
    case WeightCodec::kQ6_K: quantize_row_q6_K(x, reinterpret_cast<BlockQ6_K*>(out), k); break;
    default: break;
  }
}

}  // namespace gb::kernels

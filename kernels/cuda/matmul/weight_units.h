// A row of a packed weight matrix as a sequence of "units" that one thread decodes at
// a time with the shared codecs: a GGUF block (32 or 256 elements, through its
// ggml_blocks.h dequantizer) or, for the element codecs (f32/f16/bf16, int8/fp8,
// int4, nf4/fp4), 32 consecutive elements (the last unit of a row may be shorter).
// Every value equals dequantize_row's (packed_matrix.h) bit for bit: the same
// decoders, the same arithmetic. Host and device alike, so that the host tests check
// the indexing the CUDA kernels use (tests/cuda/matmul/weight_units_test.cc).
// Not here: any kernel; the fast GEMV's vectorised decoders (linear_gemv.cu).
#pragma once

#include <cstdint>

#include "kernels/codecs/host_device.h"
#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels::cuda {

inline constexpr int kElementUnit = 32;  // elements per unit of the element codecs
inline constexpr int kMaxUnit = 256;     // the largest unit (a K-quant superblock)

GB_HOST_DEVICE inline int unit_elems(WeightCodec c) {
  const BlockShape b = ggml_block_shape(c);
  return b.elems > 0 ? b.elems : kElementUnit;
}

GB_HOST_DEVICE inline int64_t units_per_row(const PackedMatrix& m) {
  const int64_t e = unit_elems(m.codec);
  return (m.cols + e - 1) / e;
}

// Element k of row r (p = m.row(r)) of an element codec: dequantize_row's expression.
GB_HOST_DEVICE inline float decode_element(const PackedMatrix& m, int64_t r, int64_t k, const uint8_t* p) {
  switch (m.codec) {
    case WeightCodec::kF32: return reinterpret_cast<const float*>(p)[k];
    case WeightCodec::kF16: return f16_to_f32(reinterpret_cast<const uint16_t*>(p)[k]);
    case WeightCodec::kBF16: return bf16_to_f32(reinterpret_cast<const uint16_t*>(p)[k]);
    case WeightCodec::kInt8: return int_scale(m, r, k) * static_cast<float>(static_cast<int8_t>(p[k]));
    case WeightCodec::kFp8: return int_scale(m, r, k) * fp8_e4m3_to_f32(p[k]);
    case WeightCodec::kInt4: {
      const int64_t g = r * m.groups_per_row() + k / m.group;
      const float s = f16_to_f32(static_cast<const uint16_t*>(m.scales)[g]);
      const float z = f16_to_f32(static_cast<const uint16_t*>(m.zeros)[g]);
      const int q = (k & 1) ? (p[k / 2] >> 4) : (p[k / 2] & 15);
      return s * (static_cast<float>(q) - z);
    }
    case WeightCodec::kNf4:
    case WeightCodec::kFp4: {
      const float a = bnb_absmax(m, r, k / m.group);
      const uint8_t q = static_cast<uint8_t>((k & 1) ? (p[k / 2] & 15) : (p[k / 2] >> 4));
      return (m.codec == WeightCodec::kNf4 ? nf4_value(q) : fp4_value(q)) * a;
    }
    default: return 0.0f;  // GGUF codecs decode whole blocks (decode_unit)
  }
}

// Unit u of row r into out[0, n); returns n (unit_elems, or fewer for the last unit
// of an element codec's row). out holds kMaxUnit floats.
GB_HOST_DEVICE inline int decode_unit(const PackedMatrix& m, int64_t r, int64_t u, float* out) {
  const uint8_t* p = m.row(r);
  const BlockShape bs = ggml_block_shape(m.codec);
  if (bs.elems > 0) {
    const uint8_t* blk = p + u * bs.bytes;
    switch (m.codec) {
      case WeightCodec::kQ8_0: dequantize_q8_0(*reinterpret_cast<const BlockQ8_0*>(blk), out); break;
      case WeightCodec::kQ4_0: dequantize_q4_0(*reinterpret_cast<const BlockQ4_0*>(blk), out); break;
      case WeightCodec::kQ4_1: dequantize_q4_1(*reinterpret_cast<const BlockQ4_1*>(blk), out); break;
      case WeightCodec::kQ5_0: dequantize_q5_0(*reinterpret_cast<const BlockQ5_0*>(blk), out); break;
      case WeightCodec::kQ5_1: dequantize_q5_1(*reinterpret_cast<const BlockQ5_1*>(blk), out); break;
      case WeightCodec::kQ2_K: dequantize_q2_K(*reinterpret_cast<const BlockQ2_K*>(blk), out); break;
      case WeightCodec::kQ3_K: dequantize_q3_K(*reinterpret_cast<const BlockQ3_K*>(blk), out); break;
      case WeightCodec::kQ4_K: dequantize_q4_K(*reinterpret_cast<const BlockQ4_K*>(blk), out); break;
      case WeightCodec::kQ5_K: dequantize_q5_K(*reinterpret_cast<const BlockQ5_K*>(blk), out); break;
      case WeightCodec::kQ6_K: dequantize_q6_K(*reinterpret_cast<const BlockQ6_K*>(blk), out); break;
      default: break;
    }
    return bs.elems;
  }
  const int64_t k0 = u * kElementUnit;
  const int64_t left = m.cols - k0;
  const int n = left < kElementUnit ? static_cast<int>(left) : kElementUnit;
  for (int i = 0; i < n; ++i) out[i] = decode_element(m, r, k0 + i, p);
  return n;
}

}  // namespace gb::kernels::cuda

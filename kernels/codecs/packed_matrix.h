// A weight matrix in any weight format, as the kernels of every backend read it: the
// codec, its scale layout and pointers to its packed arrays (backend memory), and the
// reference dequantizer of one row that every fast kernel is tested against. For the
// host and the device alike (header-only C++17, no engine includes).
//
// Shapes are the linear layer's: W [rows = out features, cols = in features],
// row-major, y = x W^T. What each codec stores (the scale arrays are per row, or per
// group of `group` consecutive elements of a row, row-major):
//
//   codec      codes (row r at codes + r * row_bytes)   scales            zeros
//   f32/f16/bf16  the elements                           -                 -
//   int8       int8 q                 x = s q            f32 per row, or f16 per group
//   fp8        e4m3fn q               x = s fp8(q)       f32 per row, or f16 per group
//   int4       two per byte, element 2i in the low nibble
//                                     x = s (q - z)      f16 per group     f16 per group
//   nf4/fp4    two per byte, element 2i in the high nibble
//                                     x = a table(q)     absmax a per block of `group`:
//                                                        f32, or (double quantization)
//                                                        u8 codes of bnb's dynamic map
//   q8_0...q6_k   rows of GGUF blocks (ggml_blocks.h)    -                 -
//
// Per-tensor scales are held as per-row scales (equal within each source tensor), so
// that a fused matrix (q|k|v) keeps each tensor's own scale.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/codecs/bnb4.h"
#include "kernels/codecs/float16.h"
#include "kernels/codecs/fp8.h"
#include "kernels/codecs/ggml_blocks.h"
#include "kernels/codecs/ggml_interleaved.h"
#include "kernels/codecs/host_device.h"

namespace gb::kernels {

enum class WeightCodec : uint8_t {
  kF32,
  kF16,
  kBF16,
  kInt8,
  kFp8,
  kInt4,
  kNf4,
  kFp4,
  kQ8_0,
  kQ4_0,
  kQ4_1,
  kQ5_0,
  kQ5_1,
  kQ2_K,
  kQ3_K,
  kQ4_K,
  kQ5_K,
  kQ6_K,
};

// How int8/fp8 scales are laid out: one per row, or one per group of a row.
enum class ScaleLayout : uint8_t { kNone, kRow, kGroup };

// The GGUF block codecs: elements per block and bytes per block (0, 0 otherwise).
struct BlockShape {
  int elems = 0;
  int bytes = 0;
};
GB_HOST_DEVICE constexpr BlockShape ggml_block_shape(WeightCodec c) {
  switch (c) {
    case WeightCodec::kQ8_0: return {32, 34};
    case WeightCodec::kQ4_0: return {32, 18};
    case WeightCodec::kQ4_1: return {32, 20};
    case WeightCodec::kQ5_0: return {32, 22};
    case WeightCodec::kQ5_1: return {32, 24};
    case WeightCodec::kQ2_K: return {256, 84};
    case WeightCodec::kQ3_K: return {256, 110};
    case WeightCodec::kQ4_K: return {256, 144};
    case WeightCodec::kQ5_K: return {256, 176};
    case WeightCodec::kQ6_K: return {256, 210};
    default: return {0, 0};
  }
}

GB_HOST_DEVICE constexpr bool is_ggml_codec(WeightCodec c) { return ggml_block_shape(c).elems > 0; }

// Bytes of one row of `cols` codes; 0 when cols does not fit the codec's blocks
// (a GGUF row that is not a whole number of blocks, an odd row of 4-bit codes).
GB_HOST_DEVICE constexpr size_t codec_row_bytes(WeightCodec c, int64_t cols) {
  switch (c) {
    case WeightCodec::kF32: return static_cast<size_t>(cols) * 4;
    case WeightCodec::kF16:
    case WeightCodec::kBF16: return static_cast<size_t>(cols) * 2;
    case WeightCodec::kInt8:
    case WeightCodec::kFp8: return static_cast<size_t>(cols);
    case WeightCodec::kInt4:
    case WeightCodec::kNf4:
    case WeightCodec::kFp4: return cols % 2 == 0 ? static_cast<size_t>(cols / 2) : 0;
    default: {
      const BlockShape b = ggml_block_shape(c);
      return cols % b.elems == 0 ? static_cast<size_t>(cols / b.elems) * static_cast<size_t>(b.bytes) : 0;
    }
  }
}

struct PackedMatrix {
  WeightCodec codec = WeightCodec::kF32;
  ScaleLayout layout = ScaleLayout::kNone;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t group = 0;               // elements per scale group / absmax block (kGroup, nf4, fp4, int4)
  const uint8_t* codes = nullptr;  // row r at codes + r * row_bytes
  size_t row_bytes = 0;
  const void* scales = nullptr;
  const void* zeros = nullptr;     // int4
  // nf4/fp4 with double quantization: scales are u8 codes; absmax of block b is
  // dq_code[scales[b]] * dq_scales[b / dq_block] + dq_offsets[b / dq_block], where b
  // = block_row_index[r] + j for block j of row r (each source tensor's blocks start
  // at a multiple of dq_block, so a fused matrix keeps each tensor's statistics).
  const float* dq_code = nullptr;     // 256 values (bitsandbytes' dynamic map)
  const float* dq_scales = nullptr;
  const float* dq_offsets = nullptr;
  const uint32_t* block_row_index = nullptr;  // null: block b of row r is r * cols / group + j
  int64_t dq_block = 256;

  // 0: rows row-major. kInterleaveRows: q8_0/q4_0/q4_K rows interleaved in groups of 8
  // (kernels/codecs/ggml_interleaved.h; the CPU backend's own layout), the rows past
  // the last whole group row-major; row() is then not a row: read blocks through
  // ggml_row_block.
  int32_t interleave = 0;

  GB_HOST_DEVICE const uint8_t* row(int64_t r) const { return codes + static_cast<size_t>(r) * row_bytes; }
  GB_HOST_DEVICE int64_t groups_per_row() const { return group > 0 ? cols / group : 1; }
};

// Block b of GGUF row r in its plain layout: a pointer into the row, or, for a row
// of an interleaved group, the block rebuilt in scratch (sizeof one block, aligned).
GB_HOST_DEVICE inline const uint8_t* ggml_row_block(const PackedMatrix& m, int64_t r, int64_t b, uint8_t* scratch) {
  const int bytes = ggml_block_shape(m.codec).bytes;
  if (m.interleave == 0 || r >= m.rows / kInterleaveRows * kInterleaveRows) return m.row(r) + b * bytes;
  const uint8_t* x8 = m.row(r / kInterleaveRows * kInterleaveRows) + b * kInterleaveRows * bytes;
  x8_extract_block(x8, bytes, static_cast<int>(r % kInterleaveRows), scratch);
  return scratch;
}

// The absmax of nf4/fp4 block j of row r.
GB_HOST_DEVICE inline float bnb_absmax(const PackedMatrix& m, int64_t r, int64_t j) {
  const int64_t b = (m.block_row_index ? static_cast<int64_t>(m.block_row_index[r]) : r * m.groups_per_row()) + j;
  if (m.dq_code == nullptr) return static_cast<const float*>(m.scales)[b];
  const uint8_t code = static_cast<const uint8_t*>(m.scales)[b];
  return m.dq_code[code] * m.dq_scales[b / m.dq_block] + m.dq_offsets[b / m.dq_block];
}

// The scale of int8/fp8/int4 element k of row r.
GB_HOST_DEVICE inline float int_scale(const PackedMatrix& m, int64_t r, int64_t k) {
  if (m.layout == ScaleLayout::kRow) return static_cast<const float*>(m.scales)[r];
  return f16_to_f32(static_cast<const uint16_t*>(m.scales)[r * m.groups_per_row() + k / m.group]);
}

// Row r of `m` as f32 into out[0, cols): the reference every kernel is checked against.
GB_HOST_DEVICE inline void dequantize_row(const PackedMatrix& m, int64_t r, float* out) {
  const uint8_t* p = m.row(r);
  const int64_t n = m.cols;
  switch (m.codec) {
    case WeightCodec::kF32:
      for (int64_t k = 0; k < n; ++k) out[k] = reinterpret_cast<const float*>(p)[k];
      return;
    case WeightCodec::kF16:
      for (int64_t k = 0; k < n; ++k) out[k] = f16_to_f32(reinterpret_cast<const uint16_t*>(p)[k]);
      return;
    case WeightCodec::kBF16:
      for (int64_t k = 0; k < n; ++k) out[k] = bf16_to_f32(reinterpret_cast<const uint16_t*>(p)[k]);
      return;
    case WeightCodec::kInt8:
      for (int64_t k = 0; k < n; ++k) out[k] = int_scale(m, r, k) * static_cast<float>(static_cast<int8_t>(p[k]));
      return;
    case WeightCodec::kFp8:
      for (int64_t k = 0; k < n; ++k) out[k] = int_scale(m, r, k) * fp8_e4m3_to_f32(p[k]);
      return;
    case WeightCodec::kInt4: {
      const auto* s = static_cast<const uint16_t*>(m.scales) + r * m.groups_per_row();
      const auto* z = static_cast<const uint16_t*>(m.zeros) + r * m.groups_per_row();
      for (int64_t k = 0; k < n; ++k) {
        const int q = (k & 1) ? (p[k / 2] >> 4) : (p[k / 2] & 15);
        out[k] = f16_to_f32(s[k / m.group]) * (static_cast<float>(q) - f16_to_f32(z[k / m.group]));
      }
      return;
    }
    case WeightCodec::kNf4:
    case WeightCodec::kFp4: {
      const bool nf4 = m.codec == WeightCodec::kNf4;
      for (int64_t j = 0; j < m.groups_per_row(); ++j) {
        const float a = bnb_absmax(m, r, j);
        for (int64_t k = j * m.group; k < (j + 1) * m.group; ++k) {
          const uint8_t q = (k & 1) ? (p[k / 2] & 15) : (p[k / 2] >> 4);
          out[k] = (nf4 ? nf4_value(q) : fp4_value(q)) * a;
        }
      }
      return;
    }
    default:
      break;
  }
  const BlockShape bs = ggml_block_shape(m.codec);
  alignas(8) uint8_t scratch[sizeof(BlockQ4_K)];
  for (int64_t b = 0; b < n / bs.elems; ++b) {
    const uint8_t* blk = m.interleave ? ggml_row_block(m, r, b, scratch) : p + b * bs.bytes;
    float* y = out + b * bs.elems;
    switch (m.codec) {
      case WeightCodec::kQ8_0: dequantize_q8_0(*reinterpret_cast<const BlockQ8_0*>(blk), y); break;
      case WeightCodec::kQ4_0: dequantize_q4_0(*reinterpret_cast<const BlockQ4_0*>(blk), y); break;
      case WeightCodec::kQ4_1: dequantize_q4_1(*reinterpret_cast<const BlockQ4_1*>(blk), y); break;
      case WeightCodec::kQ5_0: dequantize_q5_0(*reinterpret_cast<const BlockQ5_0*>(blk), y); break;
      case WeightCodec::kQ5_1: dequantize_q5_1(*reinterpret_cast<const BlockQ5_1*>(blk), y); break;
      case WeightCodec::kQ2_K: dequantize_q2_K(*reinterpret_cast<const BlockQ2_K*>(blk), y); break;
      case WeightCodec::kQ3_K: dequantize_q3_K(*reinterpret_cast<const BlockQ3_K*>(blk), y); break;
      case WeightCodec::kQ4_K: dequantize_q4_K(*reinterpret_cast<const BlockQ4_K*>(blk), y); break;
      case WeightCodec::kQ5_K: dequantize_q5_K(*reinterpret_cast<const BlockQ5_K*>(blk), y); break;
      case WeightCodec::kQ6_K: dequantize_q6_K(*reinterpret_cast<const BlockQ6_K*>(blk), y); break;
      default: break;
    }
  }
}

}  // namespace gb::kernels

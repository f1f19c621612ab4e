// Synthetic weights quantized where they are drawn, for the host and the device
// alike: one group of a synthetic matrix (the tensor of a key, element r * cols + c
// of kernels/codecs/synthetic_value.h) drawn and quantized by the shared group
// quantizers (kernels/codecs/group_quantize.h), into the arrays the host quantizer
// (kernels/quantize/quantize_matrix.h) would make of the same matrix, bit for bit.
// The CPU backend runs these over rows on its threads, the CUDA backend one group a
// thread (kernels/cuda/synthetic/synthetic_quantize.cu); both draw each element where
// it is read, so no f32 copy of the matrix exists anywhere.
//
// Codecs: int8 and fp8 (a scale per row: synthetic_row_absmax, then symmetric_code
// per element; per group), int4, nf4 and fp4 (absmax in f32; double quantization is
// the caller's, over those absmax values), q8_0, q4_0, q4_1, q5_0 and q5_1, and the
// K types q2_K...q6_K (a superblock of 256 drawn into an array first: their
// searches read each element many times).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/codecs/ggml_quantize_k.h"
#include "kernels/codecs/group_quantize.h"
#include "kernels/codecs/host_device.h"
#include "kernels/codecs/packed_matrix.h"
#include "kernels/codecs/synthetic_value.h"

namespace gb::kernels {

// Element `base + k` of the tensor of `key`: the x(k) of a group quantizer.
struct SyntheticDrawAt {
  uint64_t key;
  float mean;
  double scale;  // synthetic_scale(stddev)
  uint64_t base;
  GB_HOST_DEVICE float operator()(int64_t k) const {
    return synthetic_element(key, mean, scale, base + static_cast<uint64_t>(k));
  }
};

// Where a quantized matrix's arrays are (one memory: host for the CPU backend, device
// for the CUDA one): codes rows x row_bytes; scales and zeros as the codec stores
// them (kernels/codecs/packed_matrix.h), nf4/fp4's absmax as f32.
struct QuantizedArraysOut {
  uint8_t* codes = nullptr;
  uint8_t* scales = nullptr;
  uint8_t* zeros = nullptr;
  size_t row_bytes = 0;
};

// The codecs whose groups are quantized here (layout kGroup for int8/fp8), and those
// quantized per row (int8/fp8 kRow).
GB_HOST_DEVICE constexpr bool synthetic_grouped_codec(WeightCodec c, ScaleLayout layout) {
  return ((c == WeightCodec::kInt8 || c == WeightCodec::kFp8) && layout == ScaleLayout::kGroup) ||
         c == WeightCodec::kInt4 || c == WeightCodec::kNf4 || c == WeightCodec::kFp4 || is_simple_ggml_codec(c) ||
         is_k_ggml_codec(c);
}
GB_HOST_DEVICE constexpr bool synthetic_row_codec(WeightCodec c, ScaleLayout layout) {
  return (c == WeightCodec::kInt8 || c == WeightCodec::kFp8) && layout == ScaleLayout::kRow;
}

// Elements per group of a grouped codec: the GGUF blocks' (32, or 256 for the K
// types), `group` otherwise.
GB_HOST_DEVICE constexpr int64_t synthetic_group_elems(WeightCodec c, int64_t group) {
  return is_simple_ggml_codec(c) ? kQK : is_k_ggml_codec(c) ? kQK_K : group;
}

// Whether the codec, its layout and group are quantized here for rows of `cols`
// elements: a shape the codec takes (else the host quantizer reports it), and
// 4-bit codes in even groups (a byte never holds two groups' codes).
GB_HOST_DEVICE constexpr bool synthetic_quantizable(WeightCodec c, ScaleLayout layout, int64_t group, int64_t cols) {
  if (cols < 1 || codec_row_bytes(c, cols) == 0) return false;
  if (synthetic_row_codec(c, layout)) return true;
  if (!synthetic_grouped_codec(c, layout)) return false;
  const int64_t g = synthetic_group_elems(c, group);
  const bool nibbles = c == WeightCodec::kInt4 || c == WeightCodec::kNf4 || c == WeightCodec::kFp4;
  return g >= 2 && cols % g == 0 && (!nibbles || g % 2 == 0);
}

// max |element| of row r of a [., cols] synthetic matrix (drawn from `d`, whose base
// is ignored).
GB_HOST_DEVICE inline float synthetic_row_absmax(SyntheticDrawAt d, int64_t cols, int64_t r) {
  d.base = static_cast<uint64_t>(r) * static_cast<uint64_t>(cols);
  return group_absmax(d, cols);
}

// Group j of row r (j < cols / synthetic_group_elems) of a [., cols] synthetic
// matrix in a grouped codec other than the K types, written into `out`. int4 ORs
// its nibbles: the caller zeroes the codes first.
GB_HOST_DEVICE inline void synthetic_quantize_group(WeightCodec codec, int64_t group, SyntheticDrawAt d, int64_t cols,
                                                    int64_t r, int64_t j, const QuantizedArraysOut& out) {
  const int64_t g = synthetic_group_elems(codec, group), gpr = cols / g, unit = r * gpr + j;
  d.base = static_cast<uint64_t>(r) * static_cast<uint64_t>(cols) + static_cast<uint64_t>(j * g);
  uint8_t* row = out.codes + static_cast<size_t>(r) * out.row_bytes;
  switch (codec) {
    case WeightCodec::kInt8:
    case WeightCodec::kFp8:
      quantize_symmetric_group(codec, d, g, reinterpret_cast<uint16_t*>(out.scales) + unit, row + j * g);
      break;
    case WeightCodec::kInt4:
      quantize_int4_group(d, g, j * g, row, reinterpret_cast<uint16_t*>(out.scales) + unit,
                          reinterpret_cast<uint16_t*>(out.zeros) + unit);
      break;
    case WeightCodec::kNf4:
    case WeightCodec::kFp4:
      reinterpret_cast<float*>(out.scales)[unit] = quantize_bnb4_block(codec == WeightCodec::kNf4, d, g, row + j * g / 2);
      break;
    default:
      quantize_simple_ggml_block(codec, d, row + static_cast<size_t>(j) * static_cast<size_t>(ggml_block_shape(codec).bytes));
      break;
  }
}

// The same for superblock j of row r in a K type (q2_K...q6_K): drawn into an array
// first, since their searches read each element many times. Apart from
// synthetic_quantize_group so that a device kernel of the other codecs does not
// carry these arrays on its stack.
GB_HOST_DEVICE inline void synthetic_quantize_k_block(WeightCodec codec, SyntheticDrawAt d, int64_t cols, int64_t r,
                                                      int64_t j, const QuantizedArraysOut& out) {
  d.base = static_cast<uint64_t>(r) * static_cast<uint64_t>(cols) + static_cast<uint64_t>(j * kQK_K);
  float x[kQK_K];
  for (int k = 0; k < kQK_K; ++k) x[k] = d(k);
  quantize_k_block(codec, x,
                   out.codes + static_cast<size_t>(r) * out.row_bytes +
                       static_cast<size_t>(j) * static_cast<size_t>(ggml_block_shape(codec).bytes));
}

}  // namespace gb::kernels

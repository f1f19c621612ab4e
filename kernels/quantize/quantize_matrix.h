// Quantizing a weight matrix into any weight format (kernels/codecs/packed_matrix.h):
// the reference quantizers of every codec, host code. What a format's row in the
// table (engine/spec/formats.h) names, this turns an f32 matrix into: the packed
// arrays on the host, ready to be uploaded to a backend, and their exact size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels {

// How to quantize: the codec and, for int8/fp8/int4/nf4/fp4, the scale layout.
struct QuantSpec {
  WeightCodec codec = WeightCodec::kF32;
  ScaleLayout layout = ScaleLayout::kNone;  // int8/fp8: kRow or kGroup
  bool per_tensor = false;                  // int8/fp8 kRow: one scale for the whole matrix
  int64_t group = 0;                        // kGroup, int4, nf4/fp4 (the absmax block)
  bool double_quant = false;                // nf4/fp4: absmax as u8 codes, f32 per 256 blocks
};

// A quantized matrix held on the host: every array the codec stores.
struct QuantizedMatrix {
  QuantSpec spec;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
  std::vector<uint8_t> codes;   // rows x row_bytes
  std::vector<uint8_t> scales;  // f32 per row, f16 per group, f32 absmax or u8 absmax codes
  std::vector<uint8_t> zeros;   // int4: f16 per group
  std::vector<float> dq_scales, dq_offsets;  // nf4/fp4 double quantization, per 256 blocks
  std::vector<uint32_t> block_row_index;     // nf4/fp4 double quantization of a fused matrix

  // Every byte the format stores for this matrix.
  size_t bytes() const;
  // A view of the host arrays (valid while this object lives and is not modified).
  PackedMatrix view() const;
};

// Quantizes w [rows, cols] (row-major f32). Errors name `what` (a tensor) and say
// which shape the codec needs (whole blocks or groups per row). Non-finite weights
// are the caller's to refuse first.
Result<QuantizedMatrix> quantize_matrix(const QuantSpec& spec, const float* w, int64_t rows, int64_t cols,
                                        const std::string& what);

// A matrix already stored in `codec` (a GGUF tensor: rows of blocks, or f32/f16/bf16
// elements), copied as it is.
Result<QuantizedMatrix> packed_matrix_copy(WeightCodec codec, const uint8_t* data, int64_t rows, int64_t cols,
                                           const std::string& what);

// Checks that the arrays of `q` (read from a file: a saved quantized checkpoint) have
// the sizes its spec, rows and cols call for: codes rows x row_bytes; int8/fp8 scales
// f32 per row or f16 per group; int4 f16 scales and zeros per group; nf4/fp4 absmax
// f32 per block, or u8 codes with f32 dq_scales and dq_offsets per 256 blocks. The
// error names `what` and the array.
Status check_quantized_arrays(const QuantizedMatrix& q, const std::string& what);
// The same check on the arrays' sizes alone (bytes of codes, scales and zeros; floats
// of dq_scales and dq_offsets), before anything is read.
struct QuantizedSizes {
  size_t codes = 0, scales = 0, zeros = 0, dq_scales = 0, dq_offsets = 0;
};
Status check_quantized_sizes(const QuantSpec& spec, int64_t rows, int64_t cols, const QuantizedSizes& have,
                             const std::string& what);
// The sizes of the arrays `spec` stores for a [rows, cols] matrix (bytes of codes,
// scales and zeros; floats of dq_scales and dq_offsets), for a shape it takes.
QuantizedSizes quantized_sizes(const QuantSpec& spec, int64_t rows, int64_t cols);

// The rows of several matrices of one codec and column count, one after another (a
// fused q|k|v or gate|up), each keeping its own scales.
Result<QuantizedMatrix> concat_rows(std::vector<QuantizedMatrix> parts, const std::string& what);

// nf4/fp4 double quantization: q's scales, dq_scales and dq_offsets made from the f32
// absmax of its nb blocks (what quantize_matrix stores for spec.double_quant; the
// device that quantized the codes hands the absmax back for this).
void double_quantize_absmax(QuantizedMatrix& q, const float* absmax, int64_t nb);

// Row r of a quantized matrix as f32 (dequantize_row over view()).
std::vector<float> dequantize_matrix(const QuantizedMatrix& q);

// "int8", "q4_K", ...: for messages.
const char* codec_name(WeightCodec c);

}  // namespace gb::kernels

// llama.cpp's reference quantizers (quantize_row_*_ref in ggml-quants.c), written
// again here from the algorithms, bit-exact: the same blocks for the same floats.
// One row of `k` elements (a multiple of the type's block) into k / block blocks.
// The dequantizers are kernels/codecs/ggml_blocks.h.
#pragma once

#include <cstdint>

#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels {

// Quantizes x[0, k) into `out` (codec_row_bytes(codec, k) bytes). codec is one of
// the GGUF codecs; k a multiple of its block.
void ggml_quantize_row(WeightCodec codec, const float* x, uint8_t* out, int64_t k);

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t k);
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t k);
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t k);
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t k);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t k);
void quantize_row_q2_K(const float* x, BlockQ2_K* y, int64_t k);
void quantize_row_q3_K(const float* x, BlockQ3_K* y, int64_t k);
void quantize_row_q4_K(const float* x, BlockQ4_K* y, int64_t k);
void quantize_row_q5_K(const float* x, BlockQ5_K* y, int64_t k);
void quantize_row_q6_K(const float* x, BlockQ6_K* y, int64_t k);

}  // namespace gb::kernels

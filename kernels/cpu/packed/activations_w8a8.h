// Activations quantized per token (one activation row) at run time, for the W8A8
// and LLM.int8() linear kernels (linear_w8a8.cc, linear_llm_int8.cc): dynamic
// absmax scales, one per row, as SmoothQuant's per-token W8A8 and bitsandbytes'
// int8_vectorwise_quant compute them. Not the weight codecs (kernels/codecs/) and
// not llama.cpp's block-wise q8 activations (activations_q8.h); they exist for the
// duration of one linear op, on the host.
//
//   int8      q = round_half_even(x * 127 / absmax), scale = absmax / 127
//   fp8       q = e4m3(x * 448 / absmax) (saturating), scale = absmax / 448
//   llm.int8  the columns j with |x[r, j]| >= threshold in some row r of the batch
//             are outliers: their values are kept in f32 (multiplied in float with
//             the weights' columns dequantized), the outlier elements themselves
//             are left out of each row's absmax, and the outlier columns' codes
//             are 0 (bitsandbytes' int8_vectorwise_quant + MatMul8bitLt).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/codecs/activation_quant.h"

namespace gb::kernels::cpu {

struct TokenActivations {
  ActivationQuant mode = ActivationQuant::kNone;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;          // codes per row: cols rounded up to 32, the tail zero
  std::vector<uint8_t> codes;  // [rows, stride]: int8 (two's complement) or e4m3fn bytes
  std::vector<float> scales;   // [rows]: x ~= scale * value(q)
  // fp8: the codes' values (without the scale) as f32 [rows, stride], what the
  // fp8 kernel multiplies (emulated fp8: e4m3 products are exact in f32).
  std::vector<float> values;
  // llm.int8: the outlier columns, ascending, and x's values there [rows, outlier_cols.size()].
  std::vector<int32_t> outlier_cols;
  std::vector<float> outliers;
};

// Quantizes x [rows, cols] (row-major) in `mode` (not kNone). col_mul: null, or
// [cols] factors each column is multiplied by first (SmoothQuant's 1 / s where no
// norm precedes the layer). threshold: llm.int8's outlier threshold (> 0).
void quantize_tokens(const float* x, int64_t rows, int64_t cols, ActivationQuant mode, float threshold,
                     const float* col_mul, TokenActivations* out);

}  // namespace gb::kernels::cpu

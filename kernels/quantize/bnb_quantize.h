// bitsandbytes' 4-bit quantizers (NF4, FP4) and its double quantization of the
// absmax values, written again from bitsandbytes' algorithms: blocks of a flattened
// tensor, x scaled by the reciprocal of the block's absmax, the nearest code (the
// lower one on a tie); double quantization subtracts the mean absmax and quantizes
// the rest blockwise (256) with bitsandbytes' signed dynamic 8-bit map. The 4-bit
// codes, the absmax values and the dequantized values are those bitsandbytes 0.50.2
// produces for the same f32 input (tests/kernels/quantize/, vectors from
// tools/gen_bnb_vectors.py); double quantization's absmax codes, scales and offset are
// not yet its bits (its float32 mean and map differ in the last bits).
#pragma once

#include <cstdint>
#include <vector>

namespace gb::kernels {

// x[0, n) in blocks of `block` (n % block == 0, block even): codes[n / 2] (element 2i
// in the high nibble), absmax[n / block]. The block and the per-value codes
// (bnb_nf4_code, bnb_fp4_code) are kernels/codecs/group_quantize.h, shared with the
// device.
void bnb_quantize_4bit(bool nf4, const float* x, int64_t n, int64_t block, uint8_t* codes, float* absmax);

// bitsandbytes' create_dynamic_map(signed=True): 256 values in ascending order.
const float* bnb_dynamic_map();

// Double quantization of absmax[0, nb): offset = mean; codes[nb] of
// (absmax - offset) / scale_k in the dynamic map, scale_k = max |absmax - offset| over
// block k of 256 (the last block may be shorter). dequantized: map[code] * scale + offset.
void bnb_double_quantize(const float* absmax, int64_t nb, uint8_t* codes, std::vector<float>* scales, float* offset);

}  // namespace gb::kernels

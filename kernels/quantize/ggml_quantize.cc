// llama.cpp's reference quantizers of the simple block types (q8_0, q4_0, q4_1,
// q5_0, q5_1: their blocks are kernels/codecs/group_quantize.h, shared with the
// device) and the row dispatch (kernels/quantize/ggml_quantize.h). The K types are
// kernels/quantize/ggml_quantize_k.cc.
#include "kernels/quantize/ggml_quantize.h"

#include "kernels/codecs/group_quantize.h"

namespace gb::kernels {

namespace {

// Row x[0, k) into k / 32 blocks of a simple codec (kernels/codecs/group_quantize.h).
template <class Block>
void quantize_simple_row(WeightCodec codec, const float* x, Block* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    const float* xb = x + i * kQK;
    quantize_simple_ggml_block(codec, [xb](int j) { return xb[j]; }, reinterpret_cast<uint8_t*>(&y[i]));
  }
}

}  // namespace

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t k) { quantize_simple_row(WeightCodec::kQ8_0, x, y, k); }
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t k) { quantize_simple_row(WeightCodec::kQ4_0, x, y, k); }
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t k) { quantize_simple_row(WeightCodec::kQ4_1, x, y, k); }
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t k) { quantize_simple_row(WeightCodec::kQ5_0, x, y, k); }
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t k) { quantize_simple_row(WeightCodec::kQ5_1, x, y, k); }

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

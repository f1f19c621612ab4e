// llama.cpp's reference quantizers of the K types, a row at a time
// (kernels/quantize/ggml_quantize.h); the superblocks are kernels/codecs/ggml_quantize_k.h,
// shared with the device.
#include "kernels/codecs/ggml_quantize_k.h"
#include "kernels/quantize/ggml_quantize.h"

namespace gb::kernels {

void quantize_row_q2_K(const float* x, BlockQ2_K* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i) quantize_block_q2_K(x + i * kQK_K, y[i]);
}
void quantize_row_q3_K(const float* x, BlockQ3_K* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i) quantize_block_q3_K(x + i * kQK_K, y[i]);
}
void quantize_row_q4_K(const float* x, BlockQ4_K* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i) quantize_block_q4_K(x + i * kQK_K, y[i]);
}
void quantize_row_q5_K(const float* x, BlockQ5_K* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i) quantize_block_q5_K(x + i * kQK_K, y[i]);
}
void quantize_row_q6_K(const float* x, BlockQ6_K* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i) quantize_block_q6_K(x + i * kQK_K, y[i]);
}

}  // namespace gb::kernels

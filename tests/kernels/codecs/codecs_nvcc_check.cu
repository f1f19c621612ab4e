// Compiles the shared codecs (kernels/codecs/) as CUDA device code with nvcc in its
// C++17 dialect: the build fails if a codec uses what device code cannot (host-only
// library calls, C++20). Built whenever CUDA is (CI has nvcc and no GPU); it is never
// run here: the CUDA backend's tests run the codecs on a GPU against the CPU ones.
#include <cstdint>

#include "kernels/codecs/float16.h"
#include "kernels/codecs/kv_element.h"
#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels {

__global__ void codecs_round_trip(const float* in, float* out, uint16_t* halves, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  halves[i] = f32_to_f16(in[i]);
  const float h = f16_to_f32(halves[i]);
  const float b = bf16_to_f32(f32_to_bf16(in[i]));
  store_kv_element(out, KvElement::kF32, i, h + b);
  out[i] += load_kv_element(halves, KvElement::kF16, i) - f32_from_bits(f32_bits(h));
}

// Every weight codec's row decoder, as a CUDA kernel will call it.
__global__ void dequantize_rows(PackedMatrix m, float* out) {
  const int64_t r = blockIdx.x;
  if (r < m.rows && threadIdx.x == 0) dequantize_row(m, r, out + r * m.cols);
}

}  // namespace gb::kernels

// Compiles the shared codecs (kernels/codecs/) as CUDA device code with nvcc in its
// C++17 dialect: the build fails if a codec uses what device code cannot (host-only
// library calls, C++20). Built whenever CUDA is (CI has nvcc and no GPU); it is never
// run here: the CUDA backend's tests run the codecs on a GPU against the CPU ones.
#include <cstdint>

#include "kernels/codecs/compute_dtype.h"
#include "kernels/codecs/float16.h"
#include "kernels/codecs/kv_element.h"
#include "kernels/codecs/kv_quant.h"
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
  out[i] += round_to_compute_dtype(in[i], ComputeDtype::kBf16) - round_to_compute_dtype(in[i], ComputeDtype::kF16);
}

// Every weight codec's row decoder, as a CUDA kernel will call it.
__global__ void dequantize_rows(PackedMatrix m, float* out) {
  const int64_t r = blockIdx.x;
  if (r < m.rows && threadIdx.x == 0) dequantize_row(m, r, out + r * m.cols);
}

// The packed KV slot: a thread per (token, head) quantizes, and a thread per head
// computes the fused products, as the CUDA attention kernel will.
__global__ void kv_slots(KvSlotLayout L, const float* x, const float* q, const float* calib, uint8_t* slots,
                         float* dots, float* acc, int tokens) {
  const int t = blockIdx.x, h = threadIdx.x;
  if (t >= tokens || h >= L.heads) return;
  uint8_t* slot = slots + t * L.slot_bytes();
  kv_quantize_head(L, x + (t * L.heads + h) * L.head_dim, h, calib, slot);
  dots[t * L.heads + h] = kv_dot_head(L, q, slot, h, calib);
  kv_axpy_head(L, 0.5f, slot, h, calib, acc + (t * L.heads + h) * L.head_dim);
  kv_dequantize_head(L, slot, h, calib, acc + (t * L.heads + h) * L.head_dim);
}

}  // namespace gb::kernels

// Rotate-half RoPE (GPT-NeoX / Hugging Face), partial rotary included (rot_dim <
// head_dim: the other dims are left as they are), as kernels/cpu/rope.h computes it:
// the angle rounded to f32 before cosf and sinf (full-precision device functions,
// accurate over the whole argument range; no __cosf). Scaling (llama3, linear) is
// already in inv_freq, which the model computes. Launch: 256 threads, a grid-stride
// loop over rows x heads x rot_dim/2 pairs, one pair per thread (each pair is read
// and written by one thread only, so in place is safe). Correct and simple first;
// not yet tuned.
#include "kernels/cuda/rope/rope.h"

#include "kernels/cuda/cuda_status.h"

namespace gb::kernels::cuda {
namespace {

__global__ void rope_kernel(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim,
                            const int64_t* positions, int64_t half, const float* inv_freq) {
  const int64_t total = rows * heads * half;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const int64_t i = t % half;
    const int64_t rh = t / half;
    const int64_t h = rh % heads, r = rh / heads;
    float* v = x + r * row_stride + h * head_dim;
    const float angle = static_cast<float>(positions[r]) * inv_freq[i];
    const float c = cosf(angle), s = sinf(angle);
    const float x1 = v[i], x2 = v[i + half];
    v[i] = x1 * c - x2 * s;
    v[i + half] = x2 * c + x1 * s;
  }
}

}  // namespace

Status rope(cudaStream_t s, float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim,
            const int64_t* positions, int64_t rot_dim, const float* inv_freq) {
  const int64_t half = rot_dim / 2;
  if (rows <= 0 || heads <= 0 || half <= 0) return Status::Ok();
  if (rot_dim > head_dim) return Error{"rope: rot_dim " + std::to_string(rot_dim) + " exceeds head_dim " +
                                       std::to_string(head_dim)};
  constexpr int kThreads = 256;
  rope_kernel<<<grid_blocks(rows * heads * half, kThreads), kThreads, 0, s>>>(x, rows, row_stride, heads, head_dim,
                                                                             positions, half, inv_freq);
  return launch_status("rope");
}

}  // namespace gb::kernels::cuda

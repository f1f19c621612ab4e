// SiLU-gated (silu(g) * u) and GELU (erf or tanh form) activations, the same
// formulas as kernels/cpu/activation.cc in f32 (expf, erff, tanhf: full-precision
// device functions, no fast-math intrinsics). Launch: 256 threads, a grid-stride loop
// over the output elements. Correct and simple first; not yet tuned.
#include "kernels/cuda/elementwise/activation.h"

#include "kernels/cuda/cuda_status.h"

namespace gb::kernels::cuda {
namespace {

__global__ void silu_mul_kernel(const float* gu, int64_t rows, int64_t inner, float* out) {
  const int64_t n = rows * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t r = i / inner, c = i - r * inner;
    const float g = gu[r * 2 * inner + c], u = gu[r * 2 * inner + inner + c];
    out[i] = g / (1.0f + expf(-g)) * u;
  }
}

__global__ void gelu_kernel(float* x, int64_t n, bool tanh_approximation) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = x[i];
    if (tanh_approximation) {
      constexpr float kC = 0.7978845608028654f;  // sqrt(2 / pi)
      x[i] = 0.5f * v * (1.0f + tanhf(kC * (v + 0.044715f * v * v * v)));
    } else {
      x[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    }
  }
}

}  // namespace

Status silu_mul(cudaStream_t s, const float* gu, int64_t rows, int64_t inner, float* out) {
  if (rows <= 0 || inner <= 0) return Status::Ok();
  constexpr int kThreads = 256;
  silu_mul_kernel<<<grid_blocks(rows * inner, kThreads), kThreads, 0, s>>>(gu, rows, inner, out);
  return launch_status("silu_mul");
}

Status gelu(cudaStream_t s, float* x, int64_t n, bool tanh_approximation) {
  if (n <= 0) return Status::Ok();
  constexpr int kThreads = 256;
  gelu_kernel<<<grid_blocks(n, kThreads), kThreads, 0, s>>>(x, n, tanh_approximation);
  return launch_status("gelu");
}

}  // namespace gb::kernels::cuda

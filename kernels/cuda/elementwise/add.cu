// x[i] += y[i] over n floats (the residual adds). Launch: 256 threads, a grid-stride
// loop over n (grid_blocks). Correct and simple first; not yet tuned (no vector loads).
#include "kernels/cuda/elementwise/add.h"

#include "kernels/cuda/cuda_status.h"

namespace gb::kernels::cuda {
namespace {

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) x[i] += y[i];
}

}  // namespace

Status add(cudaStream_t s, float* x, const float* y, int64_t n) {
  if (n <= 0) return Status::Ok();
  constexpr int kThreads = 256;
  add_kernel<<<grid_blocks(n, kThreads), kThreads, 0, s>>>(x, y, n);
  return launch_status("add");
}

}  // namespace gb::kernels::cuda

// The device synthetic_fill of kernels/cuda/synthetic/synthetic_fill.h: one element
// per thread in a grid-stride loop (256 threads a block, grid_blocks), the scale
// computed once on the host as the host generator computes it, the draw the shared
// synthetic_element (its device branch rounds the product and the sum separately,
// as the host does). Bound by the store: simple, not tuned.
#include "kernels/cuda/synthetic/synthetic_fill.h"

#include "kernels/codecs/synthetic_value.h"
#include "kernels/cuda/cuda_status.h"

namespace gb::kernels::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) synthetic_fill_kernel(uint64_t key, float mean, double scale,
                                                                  uint64_t begin, int64_t n, float* out) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; j < n; j += step)
    out[j] = synthetic_element(key, mean, scale, begin + static_cast<uint64_t>(j));
}

}  // namespace

Status synthetic_fill(cudaStream_t s, uint64_t key, float mean, float stddev, uint64_t begin, int64_t n, float* out) {
  if (n <= 0) return Status::Ok();
  synthetic_fill_kernel<<<grid_blocks(n, kThreads), kThreads, 0, s>>>(key, mean, synthetic_scale(stddev), begin, n,
                                                                      out);
  return launch_status("synthetic_fill");
}

}  // namespace gb::kernels::cuda

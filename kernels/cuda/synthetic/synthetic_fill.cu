// The device synthetic_fill of kernels/cuda/synthetic/synthetic_fill.h: one element
// per thread in a grid-stride loop (256 threads a block, grid_blocks), the scale
// computed once on the host as the host generator computes it, the draw the shared
// synthetic_element (its device branch rounds the product and the sum separately,
// as the host does). Bound by the store: simple, not tuned.
#include "kernels/cuda/synthetic/synthetic_fill.h"

#include <string>

#include "kernels/codecs/float16.h"
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

// f16 (half = true) or bf16 codes of the same draws.
__global__ void __launch_bounds__(kThreads) synthetic_fill16_kernel(uint64_t key, float mean, double scale,
                                                                    uint64_t begin, int64_t n, bool half,
                                                                    uint16_t* out) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; j < n; j += step) {
    const float x = synthetic_element(key, mean, scale, begin + static_cast<uint64_t>(j));
    out[j] = half ? f32_to_f16(x) : f32_to_bf16(x);
  }
}

}  // namespace

Status synthetic_fill_as(cudaStream_t s, uint64_t key, float mean, float stddev, uint64_t begin, int64_t n,
                         WeightCodec codec, void* out) {
  if (codec == WeightCodec::kF32) return synthetic_fill(s, key, mean, stddev, begin, n, static_cast<float*>(out));
  if (codec != WeightCodec::kF16 && codec != WeightCodec::kBF16)
    return Error{"synthetic_fill: weights are drawn on the device as f32, f16 or bf16, not codec " +
                 std::to_string(static_cast<int>(codec))};
  if (n <= 0) return Status::Ok();
  synthetic_fill16_kernel<<<grid_blocks(n, kThreads), kThreads, 0, s>>>(
      key, mean, synthetic_scale(stddev), begin, n, codec == WeightCodec::kF16, static_cast<uint16_t*>(out));
  return launch_status("synthetic_fill");
}

Status synthetic_fill(cudaStream_t s, uint64_t key, float mean, float stddev, uint64_t begin, int64_t n, float* out) {
  if (n <= 0) return Status::Ok();
  synthetic_fill_kernel<<<grid_blocks(n, kThreads), kThreads, 0, s>>>(key, mean, synthetic_scale(stddev), begin, n,
                                                                      out);
  return launch_status("synthetic_fill");
}

}  // namespace gb::kernels::cuda

// CUDA devices and their device-to-device copy bandwidth. A plain grid-stride copy
// kernel timed with events: the figure a worker registers and the decode roofline
// divides by. Compiled only when GRIDBENCH_CUDA finds nvcc.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "kernels/device_info.h"

namespace gb::kernels {
namespace {

// Every CUDA runtime call goes through this: an error becomes a gb::Error value.
#define GB_CUDA_TRY(expr)                                                              \
  do {                                                                                 \
    cudaError_t e_ = (expr);                                                           \
    if (e_ != cudaSuccess)                                                             \
      return Error{std::string(#expr) + ": " + cudaGetErrorString(e_)};                \
  } while (0)

__global__ void copy_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

}  // namespace

bool built_with_cuda() { return true; }

std::vector<DeviceInfo> cuda_devices() {
  std::vector<DeviceInfo> out;
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return out;
  }
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    DeviceInfo d;
    d.kind = "cuda";
    d.index = i;
    d.name = p.name;
    d.memory_bytes = static_cast<double>(p.totalGlobalMem);
    d.compute_capability = p.major * 10 + p.minor;
    d.cores = p.multiProcessorCount;
    out.push_back(d);
  }
  return out;
}

Result<double> measure_cuda_copy_bandwidth(int index, size_t bytes, int iters) {
  GB_CUDA_TRY(cudaSetDevice(index));
  size_t n = std::max<size_t>(1, bytes / sizeof(uint4));
  uint4 *src = nullptr, *dst = nullptr;
  GB_CUDA_TRY(cudaMalloc(&src, n * sizeof(uint4)));
  if (cudaError_t e = cudaMalloc(&dst, n * sizeof(uint4)); e != cudaSuccess) {
    cudaFree(src);
    return Error{std::string("cudaMalloc: ") + cudaGetErrorString(e)};
  }
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  int sms = 1;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, index);
  const int threads = 256, blocks = sms * 8;
  copy_kernel<<<blocks, threads>>>(src, dst, n);  // warm-up
  float best_ms = 0;
  for (int i = 0; i < std::max(1, iters); ++i) {
    cudaEventRecord(start);
    copy_kernel<<<blocks, threads>>>(src, dst, n);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    if (i == 0 || ms < best_ms) best_ms = ms;
  }
  cudaError_t err = cudaGetLastError();
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(src);
  cudaFree(dst);
  if (err != cudaSuccess) return Error{std::string("copy_kernel: ") + cudaGetErrorString(err)};
  if (best_ms <= 0) return Error{"copy_kernel: no time measured"};
  return 2.0 * static_cast<double>(n * sizeof(uint4)) / (best_ms * 1e-3);
}

}  // namespace gb::kernels

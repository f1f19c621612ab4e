// The dense matmul rate a worker registers: an n x n x n bf16 GEMM with fp32
// accumulation through cuBLAS (the fastest path on every NVIDIA GPU), timed with
// events, best of the repeats. Compiled only when GRIDBENCH_CUDA finds nvcc.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "kernels/device_info.h"

namespace gb::kernels {
namespace {

__global__ void fill_kernel(__nv_bfloat16* p, size_t n, float value) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16(value * static_cast<float>((i % 7) + 1));
}

// Frees what it holds on every path out.
struct GemmBuffers {
  __nv_bfloat16 *a = nullptr, *b = nullptr;
  float* c = nullptr;
  cublasHandle_t handle = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  ~GemmBuffers() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (handle) cublasDestroy(handle);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
  }
};

}  // namespace

Result<double> measure_cuda_matmul_flops(int index, int n, int iters) {
  if (n <= 0) return Error{"measure_cuda_matmul_flops: n must be > 0"};
  if (cudaError_t e = cudaSetDevice(index); e != cudaSuccess)
    return Error{std::string("cudaSetDevice: ") + cudaGetErrorString(e)};
  const size_t elems = static_cast<size_t>(n) * n;
  GemmBuffers g;
  for (auto [ptr, bytes] : {std::pair{reinterpret_cast<void**>(&g.a), elems * sizeof(__nv_bfloat16)},
                            std::pair{reinterpret_cast<void**>(&g.b), elems * sizeof(__nv_bfloat16)},
                            std::pair{reinterpret_cast<void**>(&g.c), elems * sizeof(float)}}) {
    if (cudaError_t e = cudaMalloc(ptr, bytes); e != cudaSuccess)
      return Error{std::string("cudaMalloc: ") + cudaGetErrorString(e)};
  }
  fill_kernel<<<256, 256>>>(g.a, elems, 0.01f);
  fill_kernel<<<256, 256>>>(g.b, elems, 0.02f);
  if (cublasStatus_t s = cublasCreate(&g.handle); s != CUBLAS_STATUS_SUCCESS)
    return Error{"cublasCreate failed with status " + std::to_string(static_cast<int>(s))};
  cudaEventCreate(&g.start);
  cudaEventCreate(&g.stop);
  const float alpha = 1.0f, beta = 0.0f;
  auto gemm = [&]() {
    return cublasGemmEx(g.handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, g.a, CUDA_R_16BF, n, g.b, CUDA_R_16BF,
                        n, &beta, g.c, CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  };
  if (cublasStatus_t s = gemm(); s != CUBLAS_STATUS_SUCCESS)  // warm-up, also picks the algorithm
    return Error{"cublasGemmEx failed with status " + std::to_string(static_cast<int>(s))};
  float best_ms = 0;
  for (int i = 0; i < (iters > 0 ? iters : 1); ++i) {
    cudaEventRecord(g.start);
    gemm();
    cudaEventRecord(g.stop);
    cudaEventSynchronize(g.stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, g.start, g.stop);
    if (i == 0 || ms < best_ms) best_ms = ms;
  }
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess)
    return Error{std::string("matmul: ") + cudaGetErrorString(e)};
  if (best_ms <= 0) return Error{"matmul: no time measured"};
  return 2.0 * static_cast<double>(n) * n * n / (best_ms * 1e-3);
}

}  // namespace gb::kernels

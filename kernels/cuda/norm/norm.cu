// RMSNorm and LayerNorm of f32 rows, as kernels/cpu/norm.cc computes them: the sums
// in f64 (so that the device and the CPU agree to a few ulps at any width), the
// scale rounded to f32 the same way. Launch: one block of 256 threads per row (a
// grid-stride loop over rows, at most 65536 blocks), a shared-memory tree reduction.
// In place (out == x) is safe: every read of a row precedes the reduction's barrier,
// and each thread writes only the elements it reads afterwards. The residual add is
// not fused: the Backend interface has no fused op. Correct and simple first; not
// yet tuned.
#include "kernels/cuda/norm/norm.h"

#include "kernels/cuda/cuda_status.h"

namespace gb::kernels::cuda {
namespace {

constexpr int kThreads = 256;

// The sum of v over the block's kThreads threads, returned to every thread.
__device__ double block_sum(double v, double* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  const double r = sh[0];
  __syncthreads();  // sh is reused by the next call
  return r;
}

__global__ void __launch_bounds__(kThreads) rms_norm_kernel(const float* x, int64_t rows, int64_t dim,
                                                            const float* w, float eps, float* out) {
  __shared__ double sh[kThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * dim;
    double ss = 0;
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) ss += static_cast<double>(xr[i]) * xr[i];
    ss = block_sum(ss, sh);
    const float inv = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(dim) + static_cast<double>(eps)));
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) out[r * dim + i] = xr[i] * inv * w[i];
    __syncthreads();  // in place: this row's writes done before the block moves on (clarity; rows are disjoint)
  }
}

__global__ void __launch_bounds__(kThreads) layer_norm_kernel(const float* x, int64_t rows, int64_t dim,
                                                              const float* w, const float* b, float eps,
                                                              float* out) {
  __shared__ double sh[kThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * dim;
    double sum = 0;
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) sum += xr[i];
    const double mean = block_sum(sum, sh) / static_cast<double>(dim);
    double var = 0;
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) var += (xr[i] - mean) * (xr[i] - mean);
    var = block_sum(var, sh);
    const double inv = 1.0 / sqrt(var / static_cast<double>(dim) + static_cast<double>(eps));
    for (int64_t i = threadIdx.x; i < dim; i += kThreads)
      out[r * dim + i] = static_cast<float>((xr[i] - mean) * inv) * w[i] + b[i];
    __syncthreads();
  }
}

__global__ void __launch_bounds__(kThreads) add_rms_norm_kernel(float* x, const float* y, int64_t rows, int64_t dim,
                                                                const float* w, float eps, float* out) {
  __shared__ double sh[kThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float* xr = x + r * dim;
    const float* yr = y + r * dim;
    double ss = 0;
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) {
      const float v = xr[i] + yr[i];
      xr[i] = v;
      ss += static_cast<double>(v) * v;
    }
    ss = block_sum(ss, sh);
    const float inv = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(dim) + static_cast<double>(eps)));
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) out[r * dim + i] = xr[i] * inv * w[i];
  }
}

__global__ void __launch_bounds__(kThreads) add_layer_norm_kernel(float* x, const float* y, int64_t rows, int64_t dim,
                                                                  const float* w, const float* b, float eps,
                                                                  float* out) {
  __shared__ double sh[kThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float* xr = x + r * dim;
    const float* yr = y + r * dim;
    double sum = 0;
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) {
      const float v = xr[i] + yr[i];
      xr[i] = v;
      sum += v;
    }
    const double mean = block_sum(sum, sh) / static_cast<double>(dim);
    double var = 0;
    for (int64_t i = threadIdx.x; i < dim; i += kThreads) var += (xr[i] - mean) * (xr[i] - mean);
    var = block_sum(var, sh);
    const double inv = 1.0 / sqrt(var / static_cast<double>(dim) + static_cast<double>(eps));
    for (int64_t i = threadIdx.x; i < dim; i += kThreads)
      out[r * dim + i] = static_cast<float>((xr[i] - mean) * inv) * w[i] + b[i];
  }
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(rows < 65536 ? rows : 65536); }

}  // namespace

Status add_rms_norm(cudaStream_t s, float* x, const float* y, int64_t rows, int64_t dim, const float* w, float eps,
                    float* out) {
  if (rows <= 0 || dim <= 0) return Status::Ok();
  add_rms_norm_kernel<<<row_blocks(rows), kThreads, 0, s>>>(x, y, rows, dim, w, eps, out);
  return launch_status("add_rms_norm");
}

Status add_layer_norm(cudaStream_t s, float* x, const float* y, int64_t rows, int64_t dim, const float* w,
                      const float* b, float eps, float* out) {
  if (rows <= 0 || dim <= 0) return Status::Ok();
  add_layer_norm_kernel<<<row_blocks(rows), kThreads, 0, s>>>(x, y, rows, dim, w, b, eps, out);
  return launch_status("add_layer_norm");
}

Status rms_norm(cudaStream_t s, const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* out) {
  if (rows <= 0 || dim <= 0) return Status::Ok();
  rms_norm_kernel<<<row_blocks(rows), kThreads, 0, s>>>(x, rows, dim, w, eps, out);
  return launch_status("rms_norm");
}

Status layer_norm(cudaStream_t s, const float* x, int64_t rows, int64_t dim, const float* w, const float* b,
                  float eps, float* out) {
  if (rows <= 0 || dim <= 0) return Status::Ok();
  layer_norm_kernel<<<row_blocks(rows), kThreads, 0, s>>>(x, rows, dim, w, b, eps, out);
  return launch_status("layer_norm");
}

}  // namespace gb::kernels::cuda

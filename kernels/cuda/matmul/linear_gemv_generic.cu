// The generic CUDA linear kernel: y[r, n] = x[r, :] . W[n, :] (+ b[n]) for W in every
// weight codec, decoded with the shared codecs (weight_units.h over
// kernels/codecs/). Correct and simple first; not tuned: it is the path for the
// codecs the tuned GEMV (linear_gemv.cu) does not cover and its oracle on the GPU.
//
// Launch shape: grid (W.rows, min(batch tiles, 65535)), kThreads threads; block
// (n, t) computes output feature n for activation rows [8 t, 8 t + 8), striding over
// tiles by gridDim.y when there are more than 65535. Each thread decodes whole units
// (a GGUF block or 32 elements) of row n, u = threadIdx.x, threadIdx.x + kThreads, ...,
// into a local buffer and accumulates their dot products with each activation row of
// the tile in f32; the per-thread sums are reduced by warp shuffles, then across
// the warps through shared memory.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda/matmul/linear_paths.h"
#include "kernels/cuda/matmul/weight_units.h"

namespace gb::kernels::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kBatchTile = 8;

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void __launch_bounds__(kThreads)
    linear_generic_kernel(const float* __restrict__ x, int64_t rows, PackedMatrix w, const float* __restrict__ bias,
                          float* __restrict__ y, int64_t ldy) {
  const int64_t n = blockIdx.x;
  const int64_t K = w.cols;
  const int64_t units = units_per_row(w);
  const int64_t unit = unit_elems(w.codec);
  const int64_t tiles = (rows + kBatchTile - 1) / kBatchTile;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __shared__ float partial[kBatchTile][kWarps];
  float buf[kMaxUnit];
  for (int64_t t = blockIdx.y; t < tiles; t += gridDim.y) {  // uniform over the block
    const int64_t r0 = t * kBatchTile;
    const int nb = static_cast<int>(rows - r0 < kBatchTile ? rows - r0 : kBatchTile);
    float acc[kBatchTile];
#pragma unroll
    for (int b = 0; b < kBatchTile; ++b) acc[b] = 0.0f;
    for (int64_t u = threadIdx.x; u < units; u += kThreads) {
      const int cnt = decode_unit(w, n, u, buf);
      const int64_t k0 = u * unit;
#pragma unroll
      for (int b = 0; b < kBatchTile; ++b) {
        if (b < nb) {
          const float* xr = x + (r0 + b) * K + k0;
          float s = 0.0f;
          for (int i = 0; i < cnt; ++i) s += xr[i] * buf[i];
          acc[b] += s;
        }
      }
    }
#pragma unroll
    for (int b = 0; b < kBatchTile; ++b) {
      const float v = warp_sum(acc[b]);
      if (lane == 0) partial[b][warp] = v;
    }
    __syncthreads();
    if (threadIdx.x < nb) {
      float s = 0.0f;
#pragma unroll
      for (int i = 0; i < kWarps; ++i) s += partial[threadIdx.x][i];
      y[(r0 + threadIdx.x) * ldy + n] = s + (bias ? bias[n] : 0.0f);
    }
    __syncthreads();  // partial is rewritten by the next tile
  }
}

}  // namespace

Status launch_gemv_generic(cudaStream_t s, const float* x, int64_t rows, const PackedMatrix& w, const float* bias,
                           float* y, int64_t ldy) {
  const int64_t tiles = (rows + kBatchTile - 1) / kBatchTile;
  const dim3 grid(static_cast<unsigned>(w.rows), static_cast<unsigned>(std::min<int64_t>(tiles, 65535)));
  linear_generic_kernel<<<grid, kThreads, 0, s>>>(x, rows, w, bias, y, ldy);
  return launch_status("linear_generic_kernel");
}

}  // namespace gb::kernels::cuda

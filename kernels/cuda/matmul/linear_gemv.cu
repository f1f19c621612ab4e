// The bandwidth-tuned decode GEMV: y[r, n] = x[r, :] . W[n, :] (+ b[n]) for up to 16
// activation rows, W in f32, f16, bf16, int8, fp8, int4, nf4, fp4, q8_0, q4_0, q4_K
// or q6_K, decoded in registers from wide loads of the packed bytes (gemv_pieces.h)
// and reused for every activation row of the pass. Tuned by reading, not yet by
// measurement (no GPU was at hand when it was written): bench/cuda_matmul_bench
// prints its fraction of copy bandwidth.
//
// Launch shape: grid ceil(W.rows / 8), 128 threads = 4 warps; warp w of block i owns
// output features n0 = 2 (4 i + w) and n0 + 1. Lane l takes pieces l, l + 32, ...
// of both rows (16 bytes of codes each for the 16-byte codecs, so that a warp reads
// 512 contiguous bytes of each row per step), decodes them, then for each activation
// row streams the matching x values (float4 loads, read-only cache, shared by the
// block's warps through L1) and accumulates in f32: acc[2][16]. Warp shuffles
// reduce the 32 lanes' sums; lane 0 adds the bias and writes y. No shared memory,
// no __syncthreads (a warp past the last row returns at once).
#include <cuda_runtime.h>

#include "kernels/cuda/matmul/gemv_pieces.h"
#include "kernels/cuda/matmul/linear_paths.h"

namespace gb::kernels::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kRowsPerWarp = 2;
constexpr int kRowsPerBlock = kWarps * kRowsPerWarp;
constexpr int kBatch = static_cast<int>(kMaxGemvRows);

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <WeightCodec C>
__global__ void __launch_bounds__(kThreads)
    gemv_kernel(const float* __restrict__ x, int rows, PackedMatrix w, const float* __restrict__ bias,
                float* __restrict__ y, int64_t ldy) {
  using P = Piece<C>;
  constexpr int E = P::kElems;
  const int lane = threadIdx.x & 31;
  const int64_t n0 = (static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5)) * kRowsPerWarp;
  if (n0 >= w.rows) return;  // the whole warp
  const int nr = w.rows - n0 < kRowsPerWarp ? static_cast<int>(w.rows - n0) : kRowsPerWarp;
  const int64_t K = w.cols;
  const int64_t pieces = K / E;                                  // exact: gemv_piece_fits
  const bool x16 = (reinterpret_cast<uintptr_t>(x) & 15u) == 0;  // then every piece's x is float4-aligned
  float acc[kRowsPerWarp][kBatch];
#pragma unroll
  for (int j = 0; j < kRowsPerWarp; ++j)
#pragma unroll
    for (int b = 0; b < kBatch; ++b) acc[j][b] = 0.0f;
  for (int64_t p = lane; p < pieces; p += 32) {
    float v[kRowsPerWarp][E];
#pragma unroll
    for (int j = 0; j < kRowsPerWarp; ++j) {
      if (j < nr) {
        P::decode(w, n0 + j, p, v[j]);
      } else {
#pragma unroll
        for (int i = 0; i < E; ++i) v[j][i] = 0.0f;
      }
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      if (b < rows) {
        const float* xb = x + b * K + p * E;
#pragma unroll
        for (int i = 0; i < E; i += 4) {
          float4 xv;
          if (x16) {
            xv = __ldg(reinterpret_cast<const float4*>(xb + i));
          } else {
            xv = make_float4(__ldg(xb + i), __ldg(xb + i + 1), __ldg(xb + i + 2), __ldg(xb + i + 3));
          }
#pragma unroll
          for (int j = 0; j < kRowsPerWarp; ++j) {
            float a = acc[j][b];
            a = fmaf(xv.x, v[j][i], a);
            a = fmaf(xv.y, v[j][i + 1], a);
            a = fmaf(xv.z, v[j][i + 2], a);
            a = fmaf(xv.w, v[j][i + 3], a);
            acc[j][b] = a;
          }
        }
      }
    }
  }
#pragma unroll
  for (int b = 0; b < kBatch; ++b) {
    if (b < rows) {  // uniform over the warp: every lane shuffles
#pragma unroll
      for (int j = 0; j < kRowsPerWarp; ++j) {
        const float s = warp_sum(acc[j][b]);
        if (lane == 0 && j < nr) y[b * ldy + n0 + j] = s + (bias ? bias[n0 + j] : 0.0f);
      }
    }
  }
}

template <WeightCodec C>
Status launch(cudaStream_t s, const float* x, int64_t rows, const PackedMatrix& w, const float* bias, float* y,
              int64_t ldy) {
  const int64_t blocks = (w.rows + kRowsPerBlock - 1) / kRowsPerBlock;  // w.rows <= 2^31 - 1 (linear.cu)
  gemv_kernel<C><<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(x, static_cast<int>(rows), w, bias, y, ldy);
  return launch_status("gemv_kernel");
}

}  // namespace

bool gemv_tuned_supports(const PackedMatrix& w) { return gemv_piece_fits(w); }

// The explicit instances: one per tuned codec.
Status launch_gemv_tuned(cudaStream_t s, const float* x, int64_t rows, const PackedMatrix& w, const float* bias,
                         float* y, int64_t ldy) {
  if (rows < 1 || rows > kMaxGemvRows || !gemv_piece_fits(w)) return Error{"gemv_kernel: W or rows not supported"};
  switch (w.codec) {
    case WeightCodec::kF32: return launch<WeightCodec::kF32>(s, x, rows, w, bias, y, ldy);
    case WeightCodec::kF16: return launch<WeightCodec::kF16>(s, x, rows, w, bias, y, ldy);
    case WeightCodec::kBF16: return launch<WeightCodec::kBF16>(s, x, rows, w, bias, y, ldy);
    case WeightCodec::kInt8: return launch<WeightCodec::kInt8>(s, x, rows, w, bias, y, ldy);
    case WeightCodec::kFp8: return launch<WeightCodec::kFp8>(s, x, rows, w, bias, y, ldy);
    case WeightCodec::kInt4: return launch<WeightCodec::kInt4>(s, x, rows, w, bias, y, ldy);
    case WeightCodec::kNf4: return launch<WeightCodec::kNf4>(s, x, rows, w, bias, y, ldy);
    case WeightCodec::kFp4: return launch<WeightCodec::kFp4>(s, x, rows, w, bias, y, ldy);
    case WeightCodec::kQ8_0: return launch<WeightCodec::kQ8_0>(s, x, rows, w, bias, y, ldy);
    case WeightCodec::kQ4_0: return launch<WeightCodec::kQ4_0>(s, x, rows, w, bias, y, ldy);
    case WeightCodec::kQ4_K: return launch<WeightCodec::kQ4_K>(s, x, rows, w, bias, y, ldy);
    case WeightCodec::kQ6_K: return launch<WeightCodec::kQ6_K>(s, x, rows, w, bias, y, ldy);
    default: break;
  }
  return Error{"gemv_kernel: codec not tuned"};
}

}  // namespace gb::kernels::cuda

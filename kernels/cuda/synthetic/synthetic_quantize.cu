// The device synthetic_quantize of kernels/cuda/synthetic/synthetic_quantize.h.
// Grouped codecs: one group a thread (grid-stride), each element drawn where the
// shared group quantizer reads it (twice: once for the group's scale, once for its
// code); a K superblock a thread in a kernel of its own, drawn into a local array of
// 256 first (the thread's stack, with the searches' own arrays: about 1.5 KB). Per-row int8/fp8: a warp a row finds the absmax (a max: exact in any
// order), a per-tensor scale is the max of those in one block, then one element a
// thread encodes. This file is compiled with --fmad=false (kernels/CMakeLists.txt),
// so that the shared quantizers round every product before the sum, as the host
// does. Simple, not tuned: it runs once per matrix at load.
#include "kernels/cuda/synthetic/synthetic_quantize.h"

#include <string>

#include "kernels/cuda/cuda_status.h"

namespace gb::kernels::cuda {
namespace {

constexpr int kThreads = 256;

__device__ inline float max_of(float a, float b) { return a < b ? b : a; }

// scales[r] = max |row r| (per_tensor) or that / qmax, a warp a row.
__global__ void __launch_bounds__(kThreads) row_absmax_kernel(SyntheticDrawAt d, int64_t rows, int64_t cols,
                                                              bool per_tensor, float qmax, float* scales) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (kThreads / 32);
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * (kThreads / 32) + threadIdx.x / 32; r < rows; r += warps) {
    float a = 0.0f;
    d.base = static_cast<uint64_t>(r) * static_cast<uint64_t>(cols);
    for (int64_t c = lane; c < cols; c += 32) a = max_of(a, quant_abs(d(c)));
    for (int o = 16; o > 0; o /= 2) a = max_of(a, __shfl_xor_sync(0xffffffffu, a, o));
    if (lane == 0) scales[r] = per_tensor ? a : a / qmax;
  }
}

// One block: every scales[r] = (max over r of scales[r]) / qmax.
__global__ void __launch_bounds__(1024) tensor_scale_kernel(int64_t rows, float qmax, float* scales) {
  __shared__ float part[32];
  float a = 0.0f;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) a = max_of(a, scales[r]);
  for (int o = 16; o > 0; o /= 2) a = max_of(a, __shfl_xor_sync(0xffffffffu, a, o));
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = a;
  __syncthreads();
  if (threadIdx.x < 32) {
    a = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0f;
    for (int o = 16; o > 0; o /= 2) a = max_of(a, __shfl_xor_sync(0xffffffffu, a, o));
    if (threadIdx.x == 0) part[0] = a / qmax;
  }
  __syncthreads();
  const float s = part[0];
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) scales[r] = s;
}

// codes[e] for every element e, against its row's scale (int8/fp8: row_bytes = cols).
__global__ void __launch_bounds__(kThreads) row_encode_kernel(WeightCodec codec, SyntheticDrawAt d, int64_t n,
                                                              int64_t cols, const float* scales, uint8_t* codes) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; e < n; e += step)
    codes[e] = symmetric_code(codec, d(e), symmetric_inverse(scales[e / cols]));
}

__global__ void __launch_bounds__(kThreads) group_kernel(WeightCodec codec, int64_t group, SyntheticDrawAt d,
                                                         int64_t rows, int64_t cols, QuantizedArraysOut out) {
  const int64_t gpr = cols / synthetic_group_elems(codec, group), units = rows * gpr;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; u < units; u += step)
    synthetic_quantize_group(codec, group, d, cols, u / gpr, u % gpr, out);
}

__global__ void __launch_bounds__(kThreads) k_block_kernel(WeightCodec codec, SyntheticDrawAt d, int64_t rows,
                                                           int64_t cols, QuantizedArraysOut out) {
  const int64_t bpr = cols / kQK_K, units = rows * bpr;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; u < units; u += step)
    synthetic_quantize_k_block(codec, d, cols, u / bpr, u % bpr, out);
}

}  // namespace

Status synthetic_quantize(cudaStream_t s, uint64_t key, float mean, float stddev, const QuantSpec& spec, int64_t rows,
                          int64_t cols, const QuantizedArraysOut& out) {
  if (!synthetic_quantizable(spec.codec, spec.layout, spec.group, cols))
    return Error{std::string("synthetic_quantize: ") + codec_name(spec.codec) + " rows of " + std::to_string(cols) +
                 " are quantized on the host, not here"};
  if (rows <= 0) return Status::Ok();
  const SyntheticDrawAt d{key, mean, synthetic_scale(stddev), 0};
  if (synthetic_row_codec(spec.codec, spec.layout)) {
    const float qmax = symmetric_qmax(spec.codec);
    float* scales = reinterpret_cast<float*>(out.scales);
    row_absmax_kernel<<<grid_blocks(rows, kThreads / 32), kThreads, 0, s>>>(d, rows, cols, spec.per_tensor, qmax,
                                                                            scales);
    if (spec.per_tensor) tensor_scale_kernel<<<1, 1024, 0, s>>>(rows, qmax, scales);
    row_encode_kernel<<<grid_blocks(rows * cols, kThreads), kThreads, 0, s>>>(spec.codec, d, rows * cols, cols,
                                                                              scales, out.codes);
    return launch_status("synthetic_quantize");
  }
  if (spec.codec == WeightCodec::kInt4)
    GB_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(out.codes, 0, static_cast<size_t>(rows) * out.row_bytes, s));
  const int64_t units = rows * (cols / synthetic_group_elems(spec.codec, spec.group));
  if (is_k_ggml_codec(spec.codec))
    k_block_kernel<<<grid_blocks(units, kThreads), kThreads, 0, s>>>(spec.codec, d, rows, cols, out);
  else
    group_kernel<<<grid_blocks(units, kThreads), kThreads, 0, s>>>(spec.codec, spec.group, d, rows, cols, out);
  return launch_status("synthetic_quantize");
}

}  // namespace gb::kernels::cuda

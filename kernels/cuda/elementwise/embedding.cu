// Embedding rows dequantized to f32, and GPT-2's learned position rows added.
// embedding: f32/f16/bf16 tables (the usual ones) one thread per element, reading
// the element with the shared codec's conversion; every other codec one thread per
// row running the shared reference dequantize_row (kernels/codecs/packed_matrix.h),
// so no block layout is re-implemented here: a prefill of n rows runs n threads,
// a decode step one (a few microseconds for a 4096-wide row). add_rows: one thread
// per element. Launch: 256 threads (64 for the per-row path), grid-stride loops.
// Correct and simple first; not yet tuned.
#include "kernels/cuda/elementwise/embedding.h"

#include "kernels/cuda/cuda_status.h"

namespace gb::kernels::cuda {
namespace {

__global__ void embedding_elements_kernel(const int32_t* ids, int64_t n, PackedMatrix t, float* out) {
  const int64_t total = n * t.cols;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / t.cols, k = i - r * t.cols;
    const uint8_t* row = t.row(ids[r]);
    float v;
    if (t.codec == WeightCodec::kF32) v = reinterpret_cast<const float*>(row)[k];
    else if (t.codec == WeightCodec::kF16) v = f16_to_f32(reinterpret_cast<const uint16_t*>(row)[k]);
    else v = bf16_to_f32(reinterpret_cast<const uint16_t*>(row)[k]);
    out[i] = v;
  }
}

__global__ void embedding_rows_kernel(const int32_t* ids, int64_t n, PackedMatrix t, float* out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < n; r += stride)
    dequantize_row(t, ids[r], out + r * t.cols);
}

__global__ void add_rows_kernel(const int64_t* positions, int64_t n, const float* table, int64_t dim, float* x) {
  const int64_t total = n * dim;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t r = i / dim, k = i - r * dim;
    x[i] += table[positions[r] * dim + k];
  }
}

}  // namespace

Status embedding(cudaStream_t s, const int32_t* ids, int64_t n, const PackedMatrix& table, float* out) {
  if (n <= 0 || table.cols <= 0) return Status::Ok();
  const bool elementwise = table.codec == WeightCodec::kF32 || table.codec == WeightCodec::kF16 ||
                           table.codec == WeightCodec::kBF16;
  if (elementwise) {
    constexpr int kThreads = 256;
    embedding_elements_kernel<<<grid_blocks(n * table.cols, kThreads), kThreads, 0, s>>>(ids, n, table, out);
  } else {
    constexpr int kThreads = 64;
    embedding_rows_kernel<<<grid_blocks(n, kThreads), kThreads, 0, s>>>(ids, n, table, out);
  }
  return launch_status("embedding");
}

Status add_rows(cudaStream_t s, const int64_t* positions, int64_t n, const float* table, int64_t dim, float* x) {
  if (n <= 0 || dim <= 0) return Status::Ok();
  constexpr int kThreads = 256;
  add_rows_kernel<<<grid_blocks(n * dim, kThreads), kThreads, 0, s>>>(positions, n, table, dim, x);
  return launch_status("add_rows");
}

}  // namespace gb::kernels::cuda

// The CUDA linear layer: y = x W^T + b with W in any weight codec
// (kernels/codecs/packed_matrix.h), x and y f32, everything in device memory. One
// entry point picks the path by the codec and the number of activation rows:
//   rows <= 16 (decode): a GEMV that decodes W as it loads it (linear_gemv*.cu);
//   rows >  16 (prefill): cuBLASLt, on W itself for f32/f16/bf16, else on tiles of W
//                         dequantized to bf16 in the workspace (linear_prefill.cu).
// The CPU reference is kernels/cpu/matmul.h (linear_range_reference); the tests are
// tests/cuda/matmul/. Not here: the backend's arena, handles and streams (the caller
// owns them), W8A8 tensor-core GEMMs (not built).
//
// Contract: linear() enqueues on ctx.stream and returns; it never synchronizes and
// never allocates: the scratch it needs comes from ctx.workspace, at least
// linear_workspace_bytes(w, rows) bytes (0 for the GEMV path, so workspace may then
// be null). Bad arguments and launch errors come back as an Error value.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels::cuda {

struct MatmulContext {
  cudaStream_t stream;
  cublasLtHandle_t lt;  // needed for rows > 16 (the cuBLASLt paths); may be null otherwise
  void* workspace;      // device memory, 256-byte aligned, at least linear_workspace_bytes
  size_t workspace_bytes;
};

// The scratch linear() needs for W and `rows` activation rows (bounded: quantized W
// is dequantized in tiles of output rows, never whole).
size_t linear_workspace_bytes(const PackedMatrix& w, int64_t rows);

// y[r * ldy + n] = sum_k x[r * w.cols + k] * W[n, k] + (bias ? bias[n] : 0), r < rows, n < w.rows;
// all pointers (including every array PackedMatrix points to) are device memory.
Status linear(const MatmulContext& ctx, const float* x, int64_t rows, const PackedMatrix& w, const float* bias,
              float* y, int64_t ldy);

// The kernel linear() runs for W and `rows`, for reports: "q4_0-gemv-cuda",
// "q2_K-gemv-generic-cuda", "q4_K-dequant-bf16-cublaslt", "bf16-cublaslt", ...
std::string linear_kernel_name(const PackedMatrix& w, int64_t rows);

}  // namespace gb::kernels::cuda

// Internal to kernels/cuda/matmul/: the launchers of each linear path, which
// linear.cu (the one dispatch place) picks from. Each enqueues on its stream, never
// synchronizes or allocates, and returns the launch error as an Error value. The
// arguments reach them already checked (linear.cu: shapes, pointers, alignment).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "kernels/cuda/matmul/linear.h"

namespace gb::kernels::cuda {

inline constexpr int64_t kMaxGemvRows = 16;  // rows above this take the prefill path

// A launch's error (cudaGetLastError) as a Status naming the kernel.
inline Status launch_status(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return Status::Ok();
  return Error{std::string(kernel) + ": launch failed: " + cudaGetErrorString(e)};
}

// linear_gemv_generic.cu: every codec, any rows (one block per output row and
// batch tile, each thread decoding whole units with the shared codecs).
Status launch_gemv_generic(cudaStream_t s, const float* x, int64_t rows, const PackedMatrix& w, const float* bias,
                           float* y, int64_t ldy);

// linear_gemv.cu: the bandwidth-tuned decode GEMV, rows <= kMaxGemvRows, for the
// codecs and shapes gemv_tuned_supports accepts.
bool gemv_tuned_supports(const PackedMatrix& w);
Status launch_gemv_tuned(cudaStream_t s, const float* x, int64_t rows, const PackedMatrix& w, const float* bias,
                         float* y, int64_t ldy);

// linear_prefill.cu: cuBLASLt on W (f32/f16/bf16) or on bf16 tiles of W dequantized
// into the workspace; prefill_workspace_bytes is its scratch.
size_t prefill_workspace_bytes(const PackedMatrix& w, int64_t rows);
Status launch_prefill(const MatmulContext& ctx, const float* x, int64_t rows, const PackedMatrix& w, const float* bias,
                      float* y, int64_t ldy);

}  // namespace gb::kernels::cuda

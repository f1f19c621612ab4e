// CUDA runtime errors as gb::Status values, and the grid-size helper of the
// elementwise kernels; for the CUDA kernel files (kernels/cuda/**) and the CUDA
// backend. Not a kernel: no device code here.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace gb::kernels::cuda {

// The last launch's error (a bad configuration, or a sticky fault of an earlier
// kernel) as a Status naming `what`; clears a non-sticky error.
inline Status launch_status(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return Status::Ok();
  return Error{std::string(what) + ": CUDA launch failed: " + cudaGetErrorString(e)};
}

// Blocks of `threads` threads for a grid-stride loop over n items: enough to fill
// any current GPU, never above the 2^31 - 1 limit of gridDim.x.
inline unsigned grid_blocks(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(b, 1, int64_t{1} << 16));
}

}  // namespace gb::kernels::cuda

// Evaluates a CUDA runtime call; on failure returns an Error naming the call.
#define GB_CUDA_RETURN_IF_ERROR(expr)                                                        \
  do {                                                                                       \
    const cudaError_t gb_cuda_e_ = (expr);                                                   \
    if (gb_cuda_e_ != cudaSuccess)                                                           \
      return ::gb::Error{std::string(#expr) + ": " + cudaGetErrorString(gb_cuda_e_)};        \
  } while (0)

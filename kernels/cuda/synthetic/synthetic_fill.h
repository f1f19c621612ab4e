// Synthetic weights drawn on the device: the values of engine/weights/synthetic.cc's
// synthetic_fill, bit for bit, through the shared per-element draw
// (kernels/codecs/synthetic_value.h). f32 only: quantizing on the device is not here.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"

namespace gb::kernels::cuda {

// out[j] = element begin + j of the tensor of `key` (mean, stddev), j < n; out
// device memory.
Status synthetic_fill(cudaStream_t s, uint64_t key, float mean, float stddev, uint64_t begin, int64_t n, float* out);

}  // namespace gb::kernels::cuda

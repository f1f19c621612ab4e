// Synthetic weights drawn on the device: the values of engine/weights/synthetic.cc's
// synthetic_fill, bit for bit, through the shared per-element draw
// (kernels/codecs/synthetic_value.h), in f32, or rounded to f16 or bf16 as the host
// quantizer rounds (kernels/codecs/float16.h). Quantizing on the device: synthetic_quantize.h.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"
#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels::cuda {

// out[j] = element begin + j of the tensor of `key` (mean, stddev), j < n; out
// device memory.
Status synthetic_fill(cudaStream_t s, uint64_t key, float mean, float stddev, uint64_t begin, int64_t n, float* out);
// The same as `codec` (kF32, kF16 or kBF16; others are an error): out holds n
// elements of it.
Status synthetic_fill_as(cudaStream_t s, uint64_t key, float mean, float stddev, uint64_t begin, int64_t n,
                         WeightCodec codec, void* out);

}  // namespace gb::kernels::cuda

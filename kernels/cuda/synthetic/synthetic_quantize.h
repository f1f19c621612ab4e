// Synthetic weight matrices drawn and quantized on the device, with no f32 copy
// anywhere: the arrays kernels/quantize/quantize_matrix.h's quantizer makes of the
// host generator's matrix (engine/weights/synthetic.cc), bit for bit, through the
// shared draw and group quantizers (kernels/codecs/synthetic_quantize.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"
#include "kernels/codecs/synthetic_quantize.h"
#include "kernels/quantize/quantize_matrix.h"

namespace gb::kernels::cuda {

// The [rows, cols] matrix of `key` (mean, stddev; element r * cols + c) in `spec`,
// into `out` (device memory, sized as the codec stores the matrix; nf4/fp4: absmax
// in f32, before any double quantization). A spec that synthetic_quantizable
// (kernels/codecs/synthetic_quantize.h) refuses is an error: int8/fp8 per row,
// tensor or group, int4 and nf4/fp4 in even groups, and every GGUF block type
// (q8_0...q5_1, q2_K...q6_K).
Status synthetic_quantize(cudaStream_t s, uint64_t key, float mean, float stddev, const QuantSpec& spec, int64_t rows,
                          int64_t cols, const QuantizedArraysOut& out);

}  // namespace gb::kernels::cuda

// Embedding lookups and GPT-2's learned position rows on the device;
// kernels/cpu/embedding.h is the reference.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"
#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels::cuda {

// out[r, :] = table[ids[r], :] as f32 (dequantized with the shared codec), r < n;
// ids device memory, each in [0, table.rows) (the caller checks); every array of
// `table` device memory; out [n, table.cols].
Status embedding(cudaStream_t s, const int32_t* ids, int64_t n, const PackedMatrix& table, float* out);
// x[r, :] += table[positions[r], :] over `dim` columns, r < n; positions device memory.
Status add_rows(cudaStream_t s, const int64_t* positions, int64_t n, const float* table, int64_t dim, float* x);

}  // namespace gb::kernels::cuda

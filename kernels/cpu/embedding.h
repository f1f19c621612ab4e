// Embedding lookups, CPU: token rows gathered from a table, and GPT-2's learned
// position rows added to them.
#pragma once

#include <cstdint>

#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels::cpu {

// out[r, :] = table[ids[r], :] as f32 for r in [0, n); each id in [0, table.rows);
// out [n, table.cols]. Rows of quantized tables are dequantized (dequantize_row).
void embedding_rows(const int32_t* ids, int64_t n, const PackedMatrix& table, float* out);

// x[r, :] += table[positions[r], :] for r in [0, n).
void add_position_rows(const int64_t* positions, int64_t n, const float* table, int64_t dim, float* x);

}  // namespace gb::kernels::cpu

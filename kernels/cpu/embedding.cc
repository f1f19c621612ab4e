// Embedding lookups (kernels/cpu/embedding.h).
#include "kernels/cpu/embedding.h"

#include <cstring>

namespace gb::kernels::cpu {

void embedding_rows(const int32_t* ids, int64_t n, const PackedMatrix& table, float* out) {
  const int64_t dim = table.cols;
  for (int64_t r = 0; r < n; ++r) {
    if (table.codec == WeightCodec::kF32)
      std::memcpy(out + r * dim, table.row(ids[r]), static_cast<size_t>(dim) * sizeof(float));
    else
      dequantize_row(table, ids[r], out + r * dim);
  }
}

void add_position_rows(const int64_t* positions, int64_t n, const float* table, int64_t dim, float* x) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < dim; ++i) x[r * dim + i] += table[positions[r] * dim + i];
}

}  // namespace gb::kernels::cpu

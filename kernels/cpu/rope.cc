// RoPE over rows (kernels/cpu/rope.h).
#include "kernels/cpu/rope.h"

namespace gb::kernels::cpu {

void rope_rows(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim, const int64_t* positions,
               int64_t rot_dim, const float* inv_freq) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h) rope_rotate_half(x + r * row_stride + h * head_dim, positions[r], rot_dim, inv_freq);
}

}  // namespace gb::kernels::cpu

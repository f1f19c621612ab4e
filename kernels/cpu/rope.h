// Rotary position embedding, rotate-half form (GPT-NeoX / Hugging Face), CPU.
#pragma once

#include <cmath>
#include <cstdint>

namespace gb::kernels::cpu {

// Rotates the first rot_dim dims of one head vector h to position `pos`:
// (h[i], h[i + rot_dim/2]) by angle pos * inv_freq[i]. The angle is rounded to f32
// before cos and sin, as Hugging Face computes it. Inline: attention calls it per
// cached key slot for caches that keep keys unrotated.
inline void rope_rotate_half(float* h, int64_t pos, int64_t rot_dim, const float* inv_freq) {
  const int64_t half = rot_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float angle = static_cast<float>(pos) * inv_freq[i];
    const float c = std::cos(angle), s = std::sin(angle);
    const float x1 = h[i], x2 = h[i + half];
    h[i] = x1 * c - x2 * s;
    h[i + half] = x2 * c + x1 * s;
  }
}

// Every head of rows [0, rows) of x [rows, heads, head_dim] (row stride
// `row_stride` floats), row r at positions[r].
void rope_rows(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim, const int64_t* positions,
               int64_t rot_dim, const float* inv_freq);

}  // namespace gb::kernels::cpu

// Attention over (row, head) items (kernels/cpu/attention.h).
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace gb::kernels::cpu {

void attention_range(const float* q, int64_t q_stride, int64_t heads, int64_t kv_heads, int64_t head_dim,
                     const float* K, const float* V, int64_t len, const int64_t* visible, float scale, int64_t i0,
                     int64_t i1, float* out) {
  const int64_t kv_width = kv_heads * head_dim;
  const int64_t group = heads / kv_heads;
  std::vector<float> p(static_cast<size_t>(len));
  std::vector<float> acc(static_cast<size_t>(head_dim));
  for (int64_t i = i0; i < i1; ++i) {
    const int64_t r = i / heads, h = i % heads, kvh = h / group;
    const float* qh = q + r * q_stride + h * head_dim;
    const int64_t vis = visible[r];
    float mx = -INFINITY;
    for (int64_t s = 0; s < vis; ++s) {
      const float* ks = K + s * kv_width + kvh * head_dim;
      float d = 0;
      for (int64_t j = 0; j < head_dim; ++j) d += qh[j] * ks[j];
      p[s] = d * scale;
      mx = std::max(mx, p[s]);
    }
    float sum = 0;
    for (int64_t s = 0; s < vis; ++s) {
      p[s] = std::exp(p[s] - mx);
      sum += p[s];
    }
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t s = 0; s < vis; ++s) {
      const float* vs = V + s * kv_width + kvh * head_dim;
      const float ps = p[s];
      for (int64_t j = 0; j < head_dim; ++j) acc[j] += ps * vs[j];
    }
    float* o = out + r * heads * head_dim + h * head_dim;
    const float inv = vis > 0 ? 1.0f / sum : 0.0f;
    for (int64_t j = 0; j < head_dim; ++j) o[j] = acc[j] * inv;
  }
}

}  // namespace gb::kernels::cpu

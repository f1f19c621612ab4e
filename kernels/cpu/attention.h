// Causal attention of query rows against f32 keys and values, the CPU reference:
// scores, a max-subtracted softmax and the weighted sum, per (query row, head).
// The backend hands each thread a range of (row, head) items; caches in other
// elements are converted first (kernels/cpu/kv_store.h).
#pragma once

#include <cstdint>

namespace gb::kernels::cpu {

// Items i in [i0, i1), i = r * heads + h: query row r, head h of q [n, heads,
// head_dim] (row stride q_stride) against slots [0, visible[r]) of K and V
// ([slots, kv_heads * head_dim]); GQA: head h reads kv head h / (heads / kv_heads).
// out [n, heads * head_dim]; a row that sees no slot gets zeros.
void attention_range(const float* q, int64_t q_stride, int64_t heads, int64_t kv_heads, int64_t head_dim,
                     const float* K, const float* V, int64_t len, const int64_t* visible, float scale, int64_t i0,
                     int64_t i1, float* out);

}  // namespace gb::kernels::cpu

// Causal attention of query rows against a layer's cached keys and values, the CPU
// kernels: scores, a max-subtracted softmax and the weighted sum, per (query row,
// head). The backend hands each thread a range of (row, head) items.
//  - attention_range: f32 keys and values (f16/bf16 caches are converted first,
//    kernels/cpu/kv_store.h).
//  - attention_packed_range: a quantized cache read as it is stored
//    (kernels/codecs/kv_quant.h), the dequantization fused into the dot products
//    and the value accumulation; a scalar reference and an AVX2+FMA+F16C version.
#pragma once

#include <cstdint>

#include "kernels/codecs/kv_cache_view.h"
#include "kernels/codecs/kv_quant.h"

namespace gb::kernels::cpu {

// Items i in [i0, i1), i = r * heads + h: query row r, head h of q [n, heads,
// head_dim] (row stride q_stride) against slots [0, visible[r]) of K and V (f32
// planes, a slot kv_heads * head_dim floats, contiguous or paged); GQA: head h
// reads kv head h / (heads / kv_heads). out [n, heads * head_dim]; a row that sees
// no slot gets zeros.
void attention_range(const float* q, int64_t q_stride, int64_t heads, int64_t kv_heads, int64_t head_dim,
                     const KvPlane& K, const KvPlane& V, int64_t len, const int64_t* visible, float scale, int64_t i0,
                     int64_t i1, float* out);
// The same over contiguous K and V ([slots, kv_heads * head_dim]).
inline void attention_range(const float* q, int64_t q_stride, int64_t heads, int64_t kv_heads, int64_t head_dim,
                            const float* K, const float* V, int64_t len, const int64_t* visible, float scale,
                            int64_t i0, int64_t i1, float* out) {
  const size_t sb = static_cast<size_t>(kv_heads * head_dim) * sizeof(float);
  attention_range(q, q_stride, heads, kv_heads, head_dim, KvPlane::contiguous(const_cast<float*>(K), sb),
                  KvPlane::contiguous(const_cast<float*>(V), sb), len, visible, scale, i0, i1, out);
}

// One layer's packed K and V planes (slots of layout.slot_bytes() each, contiguous
// or paged) and, for int8-calib, their calibrations ([kv_heads][2]: scale, zero point).
struct KvPackedPlanes {
  KvSlotLayout layout;
  KvPlane k;
  KvPlane v;
  const float* k_calib = nullptr;
  const float* v_calib = nullptr;
};

// Which code computes the fused products: the scalar reference (kv_dot_head and
// kv_axpy_head of kernels/codecs/kv_quant.h) or the AVX2+FMA+F16C version.
enum class KvIsa : uint8_t { kScalar, kAvx2 };
// Whether this CPU runs the AVX2 version; the best ISA it runs.
bool kv_avx2_supported();
KvIsa kv_best_isa();

// As attention_range over packed planes (the head_dim and kv_heads of their layout).
// rope_cs: null when the keys are stored rotated; otherwise (streaming caches, keys
// stored before RoPE) [slots][rot_dim] with cos(s * inv_freq[i]) at i and the sin at
// rot_dim / 2 + i, and key slot s is decoded, rotated to position s, then dotted.
void attention_packed_range(const float* q, int64_t q_stride, int64_t heads, const KvPackedPlanes& kv,
                            const float* rope_cs, int64_t rot_dim, const int64_t* visible, float scale, int64_t i0,
                            int64_t i1, float* out, KvIsa isa);

// The rope_cs table of slots [0, len) for attention_packed_range.
void kv_rope_table(int64_t len, int64_t rot_dim, const float* inv_freq, float* cs);

}  // namespace gb::kernels::cpu

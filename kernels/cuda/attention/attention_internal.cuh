// Shared by the attention kernels (attention.cu, attention_decode.cu,
// attention_prefill.cu); not a public header: the arguments as the kernels take them,
// the fused element loads (dequantization and, for unrotated keys, RoPE), and each
// kernel's plan (launch shape, shared memory, workspace) and launcher.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/attention/attention.h"
#include "kernels/cuda/attention/kv_decoder.h"

namespace gb::kernels::cuda::detail {

// Each lane of a warp holds elements lane + 32 t of a head, t < kLaneElems.
inline constexpr int kLaneElems = static_cast<int>(kAttentionMaxHeadDim / 32);
static_assert(kAttentionMaxHeadDim % 32 == 0, "a head is held as whole 32-lane rows");
inline constexpr unsigned kFullMask = 0xffffffffu;
// Shared memory a block plans with: the default dynamic limit, so that no launch
// needs cudaFuncSetAttribute.
inline constexpr size_t kSmemBudget = 48 * 1024;

struct AttnArgs {
  const float* q;        // [n, heads, head_dim] at row stride q_stride
  int64_t q_stride;
  int64_t n;
  int64_t heads;
  int64_t kv_heads;
  int32_t head_dim;
  int32_t group;         // heads / kv_heads
  KvDecoder d;
  KvPlane k;             // len slots of d.slot_bytes, contiguous or paged (KvPlane::slot)
  KvPlane v;
  const float* k_calib;  // int8-calib: [kv_heads][2]
  const float* v_calib;
  int64_t len;
  const int64_t* visible;  // [n]
  int32_t rot_dim;       // > 0 only for keys stored unrotated
  const float* inv_freq; // [rot_dim / 2]
  float scale;
  float* out;            // [n, heads * head_dim]
};

// Slots row r sees: visible[r] clamped to [0, len].
__device__ inline int64_t visible_of(const AttnArgs& a, int64_t r) {
  const int64_t v = a.visible[r];
  return v < 0 ? 0 : (v > a.len ? a.len : v);
}

// Element j of value head h of a slot.
__device__ inline float value_at(const AttnArgs& a, const uint8_t* slot, int32_t h, int32_t j) {
  return a.d.value(slot, h, j, a.v_calib);
}

// Element j of key head h of the slot at position pos, rotated to pos where the cache
// keeps keys unrotated: as rope_rotate_half (kernels/cpu/rope.h), the pair (i, i + half)
// turned by the angle pos * inv_freq[i], rounded to f32 before cos and sin.
// x is element j of the key as stored.
__device__ inline float rotated_key(const AttnArgs& a, const uint8_t* slot, int32_t h, int64_t pos, int32_t j,
                                    float x) {
  if (j < a.rot_dim) {
    const int32_t half = a.rot_dim / 2;
    const bool first = j < half;
    const int32_t i = first ? j : j - half;
    const float angle = static_cast<float>(pos) * a.inv_freq[i];
    const float c = cosf(angle), s = sinf(angle);
    const float partner = a.d.value(slot, h, first ? j + half : j - half, a.k_calib);
    x = first ? x * c - partner * s : x * c + partner * s;
  }
  return x;
}

__device__ inline float key_at(const AttnArgs& a, const uint8_t* slot, int32_t h, int64_t pos, int32_t j) {
  return rotated_key(a, slot, h, pos, j, a.d.value(slot, h, j, a.k_calib));
}

__device__ inline float warp_sum(float x) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(kFullMask, x, off);
  return x;
}

// ---- flash-decoding (attention_decode.cu) ----
inline constexpr int kDecodeWarps = 4;
inline constexpr int64_t kDecodeMinChunk = 64;       // slots: at least 16 per warp
inline constexpr int64_t kDecodeTargetItems = 4096;  // (row, head, chunk) items to aim for

struct DecodePlan {
  int64_t chunks = 1;       // chunks of [0, len), each chunk slots wide (the last shorter)
  int64_t chunk = 1;
  int32_t heads_per_block = 1;  // query heads of one kv head a block takes
  int64_t subgroups = 1;        // blocks per kv head: ceil(group / heads_per_block)
  size_t smem_bytes = 0;
  int64_t blocks = 0;
  size_t workspace_bytes = 0;   // partial acc [n*heads*chunks][head_dim], then (max, sum) [..][2]; sized for the splits >= chunks
};
DecodePlan decode_plan(int64_t n, int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t len);
cudaError_t launch_decode(cudaStream_t s, const AttnArgs& a, const DecodePlan& p, float* workspace);

// ---- flash-attention prefill (attention_prefill.cu) ----
inline constexpr int kPrefillThreads = 128;
inline constexpr int kPrefillMaxQueries = 16;  // query vectors (row, head) per block

struct PrefillPlan {
  int32_t heads_per_block = 1;  // query heads of one kv head in a block
  int32_t rows_per_block = 1;   // query rows in a block
  int32_t key_tile = 16;        // slots per K/V tile
  int64_t subgroups = 1;
  int64_t row_tiles = 1;
  size_t smem_bytes = 0;
  int64_t blocks = 0;
};
PrefillPlan prefill_plan(int64_t n, int64_t heads, int64_t kv_heads, int64_t head_dim);
cudaError_t launch_prefill(cudaStream_t s, const AttnArgs& a, const PrefillPlan& p);

}  // namespace gb::kernels::cuda::detail

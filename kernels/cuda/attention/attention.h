// Attention on the device: n query rows against one layer's KV cache in any KvElement,
// read as stored (the dequantization, and for keys_unrotated caches the rotation of
// key slot s to position s, fused into the loads that feed the q.k and p.v products).
//  - n == 1 (decode): flash-decoding (attention_decode.cu): [0, visible) split into
//    chunks across blocks, an online softmax per chunk, a second kernel combining the
//    chunks' partial (max, sum, acc) kept in the caller's workspace.
//  - n > 1 (prefill): flash attention (attention_prefill.cu): tiles of queries x tiles
//    of keys in shared memory, an online softmax, causal through visible[], the query
//    heads of one KV head sharing each loaded K/V tile; no n x len score matrix.
// The reference is kernels/cpu/attention.h (the CPU backend's attention()).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "kernels/cuda/attention/kv_cache_view.h"

namespace gb::kernels::cuda {

// RoPE frequencies for caches that keep keys unrotated: inv_freq device memory,
// rot_dim / 2 values (scaling applied); rot_dim 0: no rotary embedding.
struct RopeTable {
  int64_t rot_dim = 0;
  const float* inv_freq = nullptr;
};

// The largest head_dim the kernels take (each lane holds head_dim / 32 elements).
inline constexpr int64_t kAttentionMaxHeadDim = 256;

// Workspace bytes enough for every call with at most n query rows, heads query heads
// of head_dim, and cache.len <= max_len (0 when n <= 0).
size_t attention_workspace_bytes(int64_t n, int64_t heads, int64_t head_dim, int64_t max_len);

// out[r, h * head_dim + j] = sum_s softmax_s(scale * q[r, h] . K[s, kvh]) V[s, kvh][j]
// over slots s in [0, visible[r]) (clamped to [0, cache.len]; a row that sees no slot
// gets zeros), q [n, heads, head_dim] at row stride q_stride floats, out [n, heads *
// head_dim], GQA: kvh = h / (heads / kv_heads). visible: device, n values. rope: used
// only when cache.keys_unrotated. q, visible, out, workspace: device memory.
// Enqueued on `s`, never synchronizes, allocates nothing; an invalid argument (shapes,
// a missing pointer, a workspace smaller than attention_workspace_bytes(n, heads,
// head_dim, cache.len)) or a launch failure is an Error.
// The launch shape depends only on (n, heads, kv_heads, head_dim, cache.len, element)
// and what is read only on visible[] (device): a CUDA graph captured with cache.len set
// to the slots allocated replays correctly for any visible[r] up to it (the chunks past
// visible[r] finish at once).
Status attention(cudaStream_t s, const float* q, int64_t n, int64_t q_stride, int64_t heads, int64_t kv_heads,
                 int64_t head_dim, const KvCacheView& cache, const int64_t* visible /* device, n values */,
                 const RopeTable& rope, float scale, float* out, void* workspace, size_t workspace_bytes);

// The kernel attention() runs, for reports: "<element>-flash-decode-cuda" (n == 1) or
// "<element>-flash-prefill-cuda", with "-unrotated" before "-cuda" for keys_unrotated.
std::string attention_kernel_name(const KvCacheView& cache, int64_t n);

}  // namespace gb::kernels::cuda

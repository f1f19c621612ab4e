// Flash-decoding (Dao et al., "Flash-Decoding for long-context inference", 2023): one
// query row against [0, visible) of a layer's KV cache in any KvElement, the range
// split into chunks so that a short batch still fills the GPU.
//  - decode_partial_kernel: a block per (row, kv head, subgroup of that kv head's
//    query heads, chunk); its 4 warps take the chunk's slots in turn; a warp loads a
//    slot's key (dequantized, and rotated to its position where keys are stored
//    unrotated) and value head once into registers (lane: elements lane + 32 t) and
//    updates an online softmax (running max, sum, acc in shared memory) for every query
//    head of the block, so the query heads of a GQA group share each K/V load; the
//    warps' states are merged and written as the chunk's partial (max, sum, acc) to the
//    workspace.
//  - decode_combine_kernel: a block per (row, head) rescales the chunks' partials to
//    their common max and writes acc / sum (zeros for a row that sees no slot).
// Launch: partial 1D grid of plan.blocks x 128 threads, dynamic shared memory
// plan.smem_bytes (<= 48 KiB); combine n * heads blocks x 128 threads.
// Correct and simple first; not yet tuned: one slot per warp step (a warp reduction per
// query head and slot), element-wise decoding of 1-4 byte codes rather than 16-byte
// loads (a group's scale is read once per slot), expf rather than exp2 with a folded
// log2(e).
#include <cuda_runtime.h>

#include <cmath>

#include "kernels/cuda/attention/attention_internal.cuh"

namespace gb::kernels::cuda::detail {
namespace {

constexpr int kThreads = kDecodeWarps * 32;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

__global__ void __launch_bounds__(kThreads) decode_partial_kernel(AttnArgs a, DecodePlan p, float* part_acc,
                                                                  float* part_ml) {
  extern __shared__ float smem[];
  const int32_t hd = a.head_dim;
  const int32_t hpb = p.heads_per_block;
  float* sq = smem;                           // [hpb][hd] the block's queries
  float* sacc = sq + hpb * hd;                // [warps][hpb][hd] each warp's acc
  float* sm = sacc + kDecodeWarps * hpb * hd; // [warps][hpb] running max
  float* sl = sm + kDecodeWarps * hpb;        // [warps][hpb] running sum

  int64_t b = blockIdx.x;
  const int64_t c = b % p.chunks;
  b /= p.chunks;
  const int64_t sg = b % p.subgroups;
  b /= p.subgroups;
  const int32_t kvh = static_cast<int32_t>(b % a.kv_heads);
  const int64_t r = b / a.kv_heads;
  const int32_t g0 = static_cast<int32_t>(sg) * hpb;  // first head of the block within the group
  const int32_t gn = a.group - g0 < hpb ? a.group - g0 : hpb;
  const int64_t h0 = static_cast<int64_t>(kvh) * a.group + g0;
  const int64_t vis = visible_of(a, r);
  const int64_t s0 = c * p.chunk;
  const int64_t s1 = s0 + p.chunk < vis ? s0 + p.chunk : vis;

  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid & 31;
  const bool quantized = kv_element_quantized(a.d.layout.element);
  const float* qr = a.q + r * a.q_stride + h0 * hd;  // heads h0 .. h0 + gn - 1, contiguous
  for (int i = tid; i < gn * hd; i += kThreads) sq[i] = qr[i];
  for (int i = tid; i < kDecodeWarps * hpb * hd; i += kThreads) sacc[i] = 0.0f;
  for (int i = tid; i < kDecodeWarps * hpb; i += kThreads) {
    sm[i] = -INFINITY;
    sl[i] = 0.0f;
  }
  __syncthreads();

  float* wacc = sacc + warp * hpb * hd;
  float* wm = sm + warp * hpb;
  float* wl = sl + warp * hpb;
  for (int64_t s = s0 + warp; s < s1; s += kDecodeWarps) {  // the same trip count in all lanes
    const uint8_t* ks = a.k.slot(s);
    const uint8_t* vs = a.v.slot(s);
    const uint8_t* kc = a.d.codes(ks, kvh);
    const uint8_t* vc = a.d.codes(vs, kvh);
    // The scales of group 0, read once per slot (the other groups' only for int4-g32).
    KvGroupScale k0{}, v0{};
    if (quantized) {
      k0 = a.d.scale(ks, kvh, 0, a.k_calib);
      v0 = a.d.scale(vs, kvh, 0, a.v_calib);
    }
    float kr[kLaneElems], vr[kLaneElems];
#pragma unroll
    for (int t = 0; t < kLaneElems; ++t) {
      const int32_t j = lane + 32 * t;
      kr[t] = vr[t] = 0.0f;
      if (j < hd) {
        if (quantized) {
          const int32_t g = a.d.group_of(j);
          kr[t] = a.d.dequantize(kc, j, g == 0 ? k0 : a.d.scale(ks, kvh, g, a.k_calib));
          vr[t] = a.d.dequantize(vc, j, g == 0 ? v0 : a.d.scale(vs, kvh, g, a.v_calib));
        } else {
          kr[t] = load_kv_element(kc, a.d.layout.element, j);
          vr[t] = load_kv_element(vc, a.d.layout.element, j);
        }
        kr[t] = rotated_key(a, ks, kvh, s, j, kr[t]);
      }
    }
    for (int32_t gi = 0; gi < gn; ++gi) {
      float d = 0.0f;
#pragma unroll
      for (int t = 0; t < kLaneElems; ++t) {
        const int32_t j = lane + 32 * t;
        if (j < hd) d += sq[gi * hd + j] * kr[t];
      }
      const float x = warp_sum(d) * a.scale;  // the same in every lane
      const float m_old = wm[gi], l_old = wl[gi];
      const float m_new = fmaxf(m_old, x);
      const float corr = expf(m_old - m_new);  // 0 for the first slot (m_old = -inf)
      const float pe = expf(x - m_new);
#pragma unroll
      for (int t = 0; t < kLaneElems; ++t) {
        const int32_t j = lane + 32 * t;
        if (j < hd) wacc[gi * hd + j] = wacc[gi * hd + j] * corr + pe * vr[t];
      }
      __syncwarp();  // every lane has read wm / wl
      if (lane == 0) {
        wm[gi] = m_new;
        wl[gi] = l_old * corr + pe;
      }
      __syncwarp();
    }
  }
  __syncthreads();

  // Merge the warps' states into the chunk's partial; a warp that saw no slot has max
  // -inf and weight 0, and a chunk no warp saw gets max -inf, sum 0, acc 0.
  const int64_t item0 = (r * a.heads + h0) * p.chunks + c;  // head h0 + gi: item0 + gi * chunks
  for (int i = tid; i < gn * hd; i += kThreads) {
    const int32_t gi = i / hd, j = i % hd;
    float M = -INFINITY;
    for (int w = 0; w < kDecodeWarps; ++w) M = fmaxf(M, sm[w * hpb + gi]);
    float acc = 0.0f, l = 0.0f;
    for (int w = 0; w < kDecodeWarps; ++w) {
      const float mw = sm[w * hpb + gi];
      const float f = mw == -INFINITY ? 0.0f : expf(mw - M);
      acc += f * sacc[(w * hpb + gi) * hd + j];
      l += f * sl[w * hpb + gi];
    }
    const int64_t item = item0 + static_cast<int64_t>(gi) * p.chunks;
    part_acc[item * hd + j] = acc;
    if (j == 0) {
      part_ml[2 * item] = M;
      part_ml[2 * item + 1] = l;
    }
  }
}

__global__ void __launch_bounds__(kThreads) decode_combine_kernel(AttnArgs a, DecodePlan p, const float* part_acc,
                                                                  const float* part_ml) {
  const int64_t item = blockIdx.x;  // r * heads + h
  const int64_t base = item * p.chunks;
  const int32_t hd = a.head_dim;
  float M = -INFINITY;
  for (int64_t c = 0; c < p.chunks; ++c) M = fmaxf(M, part_ml[2 * (base + c)]);
  float L = 0.0f;
  for (int64_t c = 0; c < p.chunks; ++c) {
    const float mc = part_ml[2 * (base + c)];
    if (mc != -INFINITY) L += expf(mc - M) * part_ml[2 * (base + c) + 1];
  }
  const float inv = L > 0.0f ? 1.0f / L : 0.0f;
  for (int32_t j = static_cast<int32_t>(threadIdx.x); j < hd; j += kThreads) {
    float acc = 0.0f;
    for (int64_t c = 0; c < p.chunks; ++c) {
      const float mc = part_ml[2 * (base + c)];
      if (mc != -INFINITY) acc += expf(mc - M) * part_acc[(base + c) * hd + j];
    }
    a.out[item * hd + j] = acc * inv;
  }
}

}  // namespace

DecodePlan decode_plan(int64_t n, int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t len) {
  DecodePlan p;
  const int64_t items = n * heads;
  const int64_t want = items >= kDecodeTargetItems ? 1 : ceil_div(kDecodeTargetItems, items);
  const int64_t by_len = len > 0 ? ceil_div(len, kDecodeMinChunk) : 1;
  const int64_t splits = want < by_len ? want : by_len;  // non-decreasing in len
  p.chunk = len > 0 ? ceil_div(len, splits) : 1;
  p.chunks = len > 0 ? ceil_div(len, p.chunk) : 1;  // <= splits
  const int64_t group = heads / kv_heads;
  const int64_t per_head = static_cast<int64_t>((kDecodeWarps + 1) * head_dim + 2 * kDecodeWarps) * 4;
  int64_t hpb = static_cast<int64_t>(kSmemBudget) / per_head;
  hpb = hpb < 1 ? 1 : (hpb > group ? group : hpb);
  p.heads_per_block = static_cast<int32_t>(hpb);
  p.subgroups = ceil_div(group, hpb);
  p.smem_bytes = static_cast<size_t>(hpb * per_head);
  p.blocks = n * kv_heads * p.subgroups * p.chunks;
  // Sized by splits, not chunks: ceil(len / ceil(len / splits)) can dip below splits
  // and is not monotone in len, while splits is, so attention_workspace_bytes(max_len)
  // covers every shorter cache.
  p.workspace_bytes = static_cast<size_t>(items * splits * (head_dim + 2)) * sizeof(float);
  return p;
}

cudaError_t launch_decode(cudaStream_t s, const AttnArgs& a, const DecodePlan& p, float* workspace) {
  float* part_acc = workspace;
  float* part_ml = workspace + a.n * a.heads * p.chunks * a.head_dim;
  decode_partial_kernel<<<static_cast<unsigned>(p.blocks), kThreads, p.smem_bytes, s>>>(a, p, part_acc, part_ml);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  decode_combine_kernel<<<static_cast<unsigned>(a.n * a.heads), kThreads, 0, s>>>(a, p, part_acc, part_ml);
  return cudaGetLastError();
}

}  // namespace gb::kernels::cuda::detail

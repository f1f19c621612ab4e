// Flash-attention prefill (Dao et al., "FlashAttention", 2022, forward pass): n > 1
// query rows against a layer's KV cache in any KvElement, causal through visible[]
// (row r sees slots [0, visible[r])), without an n x len score matrix.
// A block takes a tile of query vectors: rows_per_block rows x heads_per_block query
// heads of one kv head (at most 16 vectors; the query heads of a GQA group share every
// loaded K/V tile), and walks the slots up to the largest visible[] of its rows in
// tiles of key_tile slots: the tile's keys (dequantized, rotated to their positions
// where keys are stored unrotated) and values into shared memory, the tile's scores
// (masked to -inf beyond a row's visible slots), the online softmax per query vector
// (running max, sum; the acc rescaled), then acc += P V. acc, queries, scores and the
// K/V tile all live in shared memory (<= 48 KiB, key rows padded by one float).
// Launch: 1D grid of row_tiles * kv_heads * subgroups blocks x 128 threads.
// Correct and simple first; not yet tuned: f32 FMA on CUDA cores (no tensor cores),
// one thread per query vector for the softmax update, tiles not double-buffered, and
// a causal block still loads the masked part of its last tile.
#include <cuda_runtime.h>

#include <cmath>

#include "kernels/cuda/attention/attention_internal.cuh"

namespace gb::kernels::cuda::detail {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Floats of shared memory for q vectors, key tile tk, head_dim hd.
int64_t prefill_smem_floats(int64_t q, int64_t tk, int64_t hd) {
  return 2 * q * hd          // queries, acc
         + tk * (hd + 1)     // keys (padded rows)
         + tk * hd           // values
         + q * tk            // scores / probabilities
         + 3 * q;            // running max, sum, correction
}

__global__ void __launch_bounds__(kPrefillThreads) prefill_kernel(AttnArgs a, PrefillPlan p) {
  extern __shared__ float smem[];
  __shared__ int64_t row_vis[kPrefillMaxQueries];
  const int32_t hd = a.head_dim, hpb = p.heads_per_block, rpb = p.rows_per_block, TK = p.key_tile;
  const int32_t Q = hpb * rpb;  // query vector qi: row qi / hpb, head qi % hpb
  const int32_t kst = hd + 1;   // key row stride: consecutive slots in different banks
  float* sq = smem;             // [Q][hd]
  float* sacc = sq + Q * hd;    // [Q][hd]
  float* sk = sacc + Q * hd;    // [TK][hd + 1]
  float* sv = sk + TK * kst;    // [TK][hd]
  float* ss = sv + TK * hd;     // [Q][TK]
  float* sm = ss + Q * TK;      // [Q]
  float* sl = sm + Q;           // [Q]
  float* sc = sl + Q;           // [Q]

  int64_t b = blockIdx.x;
  const int64_t sg = b % p.subgroups;
  b /= p.subgroups;
  const int32_t kvh = static_cast<int32_t>(b % a.kv_heads);
  const int64_t r0 = (b / a.kv_heads) * rpb;
  const int32_t g0 = static_cast<int32_t>(sg) * hpb;
  const int64_t h0 = static_cast<int64_t>(kvh) * a.group + g0;
  const int tid = static_cast<int>(threadIdx.x);

  if (tid < rpb) row_vis[tid] = r0 + tid < a.n ? visible_of(a, r0 + tid) : 0;
  for (int i = tid; i < Q * hd; i += kPrefillThreads) {
    const int32_t qi = i / hd, j = i % hd;
    const int64_t r = r0 + qi / hpb;
    const int32_t gi = qi % hpb;
    const bool valid = r < a.n && g0 + gi < a.group;
    sq[i] = valid ? a.q[r * a.q_stride + (h0 + gi) * hd + j] : 0.0f;
    sacc[i] = 0.0f;
  }
  for (int i = tid; i < Q; i += kPrefillThreads) {
    sm[i] = -INFINITY;
    sl[i] = 0.0f;
  }
  __syncthreads();
  int64_t kv_end = 0;
  for (int32_t i = 0; i < rpb; ++i) kv_end = row_vis[i] > kv_end ? row_vis[i] : kv_end;

  for (int64_t k0 = 0; k0 < kv_end; k0 += TK) {
    for (int i = tid; i < TK * hd; i += kPrefillThreads) {
      const int32_t t = i / hd, j = i % hd;
      const int64_t s = k0 + t;
      float kx = 0.0f, vx = 0.0f;
      if (s < kv_end) {
        kx = key_at(a, a.k.slot(s), kvh, s, j);
        vx = value_at(a, a.v.slot(s), kvh, j);
      }
      sk[t * kst + j] = kx;
      sv[t * hd + j] = vx;
    }
    __syncthreads();
    for (int i = tid; i < Q * TK; i += kPrefillThreads) {
      const int32_t qi = i / TK, t = i % TK;
      const int32_t row = qi / hpb;
      float x = -INFINITY;
      // Padding vectors (beyond n or the group) have row_vis 0 or are never written out.
      if (k0 + t < row_vis[row] && g0 + qi % hpb < a.group) {
        const float* qv = sq + qi * hd;
        const float* kv = sk + t * kst;
        float d = 0.0f;
        for (int32_t j = 0; j < hd; ++j) d += qv[j] * kv[j];
        x = d * a.scale;
      }
      ss[i] = x;
    }
    __syncthreads();
    for (int qi = tid; qi < Q; qi += kPrefillThreads) {
      const float m_old = sm[qi];
      float mt = m_old;
      for (int32_t t = 0; t < TK; ++t) mt = fmaxf(mt, ss[qi * TK + t]);
      const float corr = m_old == -INFINITY ? 0.0f : expf(m_old - mt);
      float lsum = 0.0f;
      for (int32_t t = 0; t < TK; ++t) {
        const float x = ss[qi * TK + t];
        const float pe = x == -INFINITY ? 0.0f : expf(x - mt);
        ss[qi * TK + t] = pe;
        lsum += pe;
      }
      sm[qi] = mt;
      sl[qi] = sl[qi] * corr + lsum;
      sc[qi] = corr;
    }
    __syncthreads();
    for (int i = tid; i < Q * hd; i += kPrefillThreads) {
      const int32_t qi = i / hd, j = i % hd;
      float acc = sacc[i] * sc[qi];
      for (int32_t t = 0; t < TK; ++t) acc += ss[qi * TK + t] * sv[t * hd + j];
      sacc[i] = acc;
    }
    __syncthreads();  // before the next tile overwrites sk, sv, ss
  }

  for (int i = tid; i < Q * hd; i += kPrefillThreads) {
    const int32_t qi = i / hd, j = i % hd;
    const int64_t r = r0 + qi / hpb;
    const int32_t gi = qi % hpb;
    if (r >= a.n || g0 + gi >= a.group) continue;
    const float l = sl[qi];
    a.out[(r * a.heads + h0 + gi) * hd + j] = l > 0.0f ? sacc[i] * (1.0f / l) : 0.0f;
  }
}

}  // namespace

PrefillPlan prefill_plan(int64_t n, int64_t heads, int64_t kv_heads, int64_t head_dim) {
  PrefillPlan p;
  // The kernel's static row_vis[] counts against the same 48 KiB.
  const int64_t budget =
      static_cast<int64_t>((kSmemBudget - kPrefillMaxQueries * sizeof(int64_t)) / sizeof(float));
  int64_t q = kPrefillMaxQueries, tk = 16;
  while (prefill_smem_floats(q, tk, head_dim) > budget && (q > 1 || tk > 1)) {
    if (tk >= q && tk > 1) tk /= 2;
    else q /= 2;
  }
  const int64_t group = heads / kv_heads;
  const int64_t hpb = group < q ? group : q;
  const int64_t rpb = q / hpb;  // >= 1
  p.heads_per_block = static_cast<int32_t>(hpb);
  p.rows_per_block = static_cast<int32_t>(rpb);
  p.key_tile = static_cast<int32_t>(tk);
  p.subgroups = ceil_div(group, hpb);
  p.row_tiles = ceil_div(n, rpb);
  p.smem_bytes = static_cast<size_t>(prefill_smem_floats(hpb * rpb, tk, head_dim)) * sizeof(float);
  p.blocks = p.row_tiles * kv_heads * p.subgroups;
  return p;
}

cudaError_t launch_prefill(cudaStream_t s, const AttnArgs& a, const PrefillPlan& p) {
  prefill_kernel<<<static_cast<unsigned>(p.blocks), kPrefillThreads, p.smem_bytes, s>>>(a, p);
  return cudaGetLastError();
}

}  // namespace gb::kernels::cuda::detail

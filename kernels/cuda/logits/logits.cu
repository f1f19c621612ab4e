// The logits reductions of kernels/cuda/logits/logits.h. Launch: one block of
// kThreads threads per row (a grid-stride loop over rows, at most 65535 blocks);
// every reduction is a fixed shared-memory tree or an exact integer sum, so a
// result never depends on timing.
//
// Argmax: the smallest key (~ordered(logit) << 32 | id) of the row. Keys order the
// row exactly as the CPU sampler sorts it (descending logit, ties by ascending id;
// -0 and +0 tie, as the CPU's comparisons have it), so the smallest is the lowest id
// of the largest logit, and "the first j candidates" are "the keys <= the j-th key".
//
// Sampling without sorting the vocabulary: the top-k cut is the k-th key, the
// nucleus cut the key where the running sum of probabilities first reaches
// top_p of the sum, and the drawn token the key where it first exceeds u times the
// kept sum. Each is a radix select: 8 passes of 8 bits from the top, each a
// 256-bin shared histogram (counts, or probabilities exp((l - max) / T) in 2^-40
// fixed point) of the keys that share the digits chosen so far. Integer sums are
// exact in any order. How this differs from the CPU's f64 running sums: the token
// can differ only where u (or top_p) falls within about vocab * 2^-40 of a
// boundary between two tokens' cumulative probabilities, and a token whose
// probability is below 2^-40 of the largest's is never drawn. The uniform is the
// caller's (the CPU sampler's generator), so the random stream is the same.
//
// Correct and simple first; not tuned (up to 27 passes over a row, per-thread run
// merging against histogram contention).
#include "kernels/cuda/logits/logits.h"

#include <cstdint>
#include <string>

#include "kernels/cuda/cuda_status.h"

namespace gb::kernels::cuda {
namespace {

constexpr int kThreads = 512;
constexpr double kMassScale = 1099511627776.0;  // 2^40: p <= 1, vocab < 2^23 keeps a sum below 2^63

using u64 = unsigned long long;  // the type of the shared-memory atomicAdd

__device__ __forceinline__ u64 order_key(float f, int64_t id) {
  uint32_t u = __float_as_uint(f);
  if ((u << 1) == 0) u = 0;  // -0 -> +0
  const uint32_t ascending = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return (static_cast<u64>(~ascending) << 32) | static_cast<uint32_t>(id);
}

// exp((l - max) / temperature) in 2^-40 fixed point (0 for NaN or underflow).
__device__ __forceinline__ u64 mass(float l, double mx, double temperature) {
  const double p = exp((static_cast<double>(l) - mx) / temperature);
  return p > 0 ? static_cast<u64>(p * kMassScale) : 0;
}

struct Shared {
  u64 hist[256];
  u64 red[kThreads];
  u64 state[2];
};

__device__ u64 block_min(u64 v, u64* red) {
  red[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s && red[threadIdx.x + s] < red[threadIdx.x]) red[threadIdx.x] = red[threadIdx.x + s];
    __syncthreads();
  }
  const u64 r = red[0];
  __syncthreads();
  return r;
}

__device__ u64 block_sum(u64 v, u64* red) {
  red[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
  const u64 r = red[0];
  __syncthreads();
  return r;
}

__device__ double block_sum_f64(double v, double* red) {
  red[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
  const double r = red[0];
  __syncthreads();
  return r;
}

// The smallest key of the row (the argmax's).
__device__ u64 row_min_key(const float* row, int64_t vocab, u64* red) {
  u64 best = ~0ull;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    const u64 k = order_key(row[i], i);
    if (k < best) best = k;
  }
  return block_min(best, red);
}

// The sum of mass() over the row's keys <= limit.
__device__ u64 row_mass(const float* row, int64_t vocab, double mx, double temperature, u64 limit, u64* red) {
  u64 sum = 0;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float l = row[i];
    if (order_key(l, i) <= limit) sum += mass(l, mx, temperature);
  }
  return block_sum(sum, red);
}

// The smallest key k of the row's keys <= limit at which the weight (1 per key, or
// its mass) of the keys <= k reaches `target`, 1 <= target <= the weight of all the
// keys <= limit. Every thread of the block calls it and gets the key.
template <bool kByMass>
__device__ u64 select_key(const float* row, int64_t vocab, double mx, double temperature, u64 limit, u64 target,
                          Shared& sh) {
  u64 prefix = 0;
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += kThreads) sh.hist[b] = 0;
    __syncthreads();
    const u64 high = shift == 56 ? 0 : ~0ull << (shift + 8);  // the digits chosen so far
    int run_bin = -1;
    u64 run = 0;
    for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
      const float l = row[i];
      const u64 k = order_key(l, i);
      if (k > limit || ((k ^ prefix) & high) != 0) continue;
      const int bin = static_cast<int>((k >> shift) & 0xffu);
      if (bin != run_bin) {
        if (run_bin >= 0 && run != 0) atomicAdd(&sh.hist[run_bin], run);
        run_bin = bin;
        run = 0;
      }
      run += kByMass ? mass(l, mx, temperature) : 1;
    }
    if (run_bin >= 0 && run != 0) atomicAdd(&sh.hist[run_bin], run);
    __syncthreads();
    if (threadIdx.x == 0) {
      u64 below = 0;
      int chosen = 255;  // not reached when target is in range
      for (int b = 0; b < 256; ++b) {
        if (below + sh.hist[b] >= target) {
          chosen = b;
          break;
        }
        below += sh.hist[b];
      }
      sh.state[0] = prefix | (static_cast<u64>(chosen) << shift);
      sh.state[1] = target - below;
    }
    __syncthreads();
    prefix = sh.state[0];
    target = sh.state[1];
  }
  __syncthreads();  // state read by every thread before it is written again
  return prefix;
}

__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* logits, int64_t rows, int64_t vocab,
                                                          int32_t* ids) {
  __shared__ u64 red[kThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const u64 best = row_min_key(logits + r * vocab, vocab, red);
    if (threadIdx.x == 0) ids[r] = static_cast<int32_t>(best & 0xffffffffu);
  }
}

__global__ void __launch_bounds__(kThreads) sample_kernel(const float* logits, int64_t rows, int64_t vocab,
                                                          double temperature, int64_t top_k, double top_p,
                                                          const double* u, int32_t* ids) {
  __shared__ Shared sh;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* row = logits + r * vocab;
    const int32_t best_id = static_cast<int32_t>(row_min_key(row, vocab, sh.red) & 0xffffffffu);
    const double mx = row[best_id];
    u64 limit = ~0ull;
    if (top_k > 0 && top_k < vocab) limit = select_key<false>(row, vocab, mx, temperature, limit, top_k, sh);
    u64 total = row_mass(row, vocab, mx, temperature, limit, sh.red);
    if (top_p < 1 && total > 0) {
      const double want = ceil(top_p * static_cast<double>(total));
      const u64 t = want < 1 ? 1 : want >= static_cast<double>(total) ? total : static_cast<u64>(want);
      limit = select_key<true>(row, vocab, mx, temperature, limit, t, sh);
      total = row_mass(row, vocab, mx, temperature, limit, sh.red);
    }
    int32_t id = best_id;
    if (total > 0) {
      // The CPU takes the first candidate whose running sum exceeds u * total: with
      // integer sums, the first whose sum reaches floor(u * total) + 1.
      const double x = floor(u[r] * static_cast<double>(total));
      const u64 below = x <= 0 ? 0 : x >= static_cast<double>(total - 1) ? total - 1 : static_cast<u64>(x);
      const u64 k = select_key<true>(row, vocab, mx, temperature, limit, below + 1, sh);
      const u64 kid = k & 0xffffffffu;
      if (kid < static_cast<u64>(vocab)) id = static_cast<int32_t>(kid);
    }
    if (threadIdx.x == 0) ids[r] = id;
    __syncthreads();
  }
}

__global__ void __launch_bounds__(kThreads) log_prob_kernel(const float* logits, int64_t rows, int64_t vocab,
                                                            const int32_t* targets, double* lp) {
  __shared__ u64 red[kThreads];
  __shared__ double dred[kThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int32_t t = targets[r];
    if (t < 0) {  // the whole block takes this branch
      if (threadIdx.x == 0) lp[r] = 0;
      continue;
    }
    const float* row = logits + r * vocab;
    const double mx = row[static_cast<int32_t>(row_min_key(row, vocab, red) & 0xffffffffu)];
    double sum = 0;
    for (int64_t i = threadIdx.x; i < vocab; i += kThreads) sum += exp(static_cast<double>(row[i]) - mx);
    sum = block_sum_f64(sum, dred);
    if (threadIdx.x == 0) lp[r] = -(log(sum) + mx - static_cast<double>(row[t]));
  }
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(rows < 65535 ? rows : 65535); }

// Ids are 32-bit in the keys; the fixed-point sums of sampling allow 2^23 tokens.
Status check_vocab(int64_t vocab, int bits, const char* what) {
  if (vocab >= (int64_t{1} << bits))
    return Error{std::string(what) + ": a vocabulary of " + std::to_string(vocab) + " tokens is above the 2^" +
                 std::to_string(bits) + " this kernel allows"};
  return Status::Ok();
}

}  // namespace

Status argmax_rows(cudaStream_t s, const float* logits, int64_t rows, int64_t vocab, int32_t* ids) {
  if (rows <= 0 || vocab <= 0) return Status::Ok();
  if (Status st = check_vocab(vocab, 31, "argmax_rows"); !st.ok()) return st;
  argmax_kernel<<<row_blocks(rows), kThreads, 0, s>>>(logits, rows, vocab, ids);
  return launch_status("argmax_rows");
}

Status sample_rows(cudaStream_t s, const float* logits, int64_t rows, int64_t vocab, double temperature,
                   int64_t top_k, double top_p, const double* u, int32_t* ids) {
  if (rows <= 0 || vocab <= 0) return Status::Ok();
  if (Status st = check_vocab(vocab, 23, "sample_rows"); !st.ok()) return st;
  if (!(temperature > 0)) return argmax_rows(s, logits, rows, vocab, ids);
  sample_kernel<<<row_blocks(rows), kThreads, 0, s>>>(logits, rows, vocab, temperature, top_k, top_p, u, ids);
  return launch_status("sample_rows");
}

Status target_log_probs(cudaStream_t s, const float* logits, int64_t rows, int64_t vocab, const int32_t* targets,
                        double* lp) {
  if (rows <= 0 || vocab <= 0) return Status::Ok();
  if (Status st = check_vocab(vocab, 31, "target_log_probs"); !st.ok()) return st;
  log_prob_kernel<<<row_blocks(rows), kThreads, 0, s>>>(logits, rows, vocab, targets, lp);
  return launch_status("target_log_probs");
}

}  // namespace gb::kernels::cuda

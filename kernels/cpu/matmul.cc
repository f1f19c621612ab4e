// The CPU matrix kernel (kernels/cpu/matmul.h): 8-wide vector accumulators, up to
// four activation rows per weight row, 64 activation rows kept hot while weight rows
// stream by, compiled for AVX2+FMA (x86-64-v3) with a generic fallback chosen at
// load time (target_clones).
#include "kernels/cpu/matmul.h"

#include <algorithm>

namespace gb::kernels::cpu {

typedef float v8f __attribute__((vector_size(32)));
typedef float v8fu __attribute__((vector_size(32), aligned(4)));

// Macros rather than functions: a function passing or returning a 256-bit vector
// would have a different ABI in the generic clone (and clang refuses it).
#define GB_LOAD8(p) (*reinterpret_cast<const v8fu*>(p))
#define GB_HSUM(v) ((((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7])))

namespace {

// The multiversioned body is internal: clang wants every declaration of a
// target_clones function to carry the attribute, so the header declares a plain
// function that calls it.
__attribute__((target_clones("arch=x86-64-v3", "default")))
void linear_range_impl(const float* x, int64_t rows, int64_t K, const float* W, const float* bias, int64_t N,
                       int64_t n0, int64_t n1, float* y) {
  const int64_t K8 = K & ~int64_t{7};
  constexpr int64_t kRowChunk = 64;  // activation rows kept hot while weight rows stream by
  for (int64_t m0 = 0; m0 < rows; m0 += kRowChunk) {
    const int64_t m1 = std::min(rows, m0 + kRowChunk);
    for (int64_t n = n0; n < n1; ++n) {
      const float* w = W + n * K;
      const float b = bias ? bias[n] : 0.0f;
      int64_t m = m0;
      for (; m + 4 <= m1; m += 4) {
        const float* x0 = x + m * K;
        const float* x1 = x0 + K;
        const float* x2 = x1 + K;
        const float* x3 = x2 + K;
        v8f a0 = {}, a1 = {}, a2 = {}, a3 = {};
        for (int64_t k = 0; k < K8; k += 8) {
          const v8f wv = GB_LOAD8(w + k);
          a0 += GB_LOAD8(x0 + k) * wv;
          a1 += GB_LOAD8(x1 + k) * wv;
          a2 += GB_LOAD8(x2 + k) * wv;
          a3 += GB_LOAD8(x3 + k) * wv;
        }
        float s0 = GB_HSUM(a0), s1 = GB_HSUM(a1), s2 = GB_HSUM(a2), s3 = GB_HSUM(a3);
        for (int64_t k = K8; k < K; ++k) {
          s0 += x0[k] * w[k];
          s1 += x1[k] * w[k];
          s2 += x2[k] * w[k];
          s3 += x3[k] * w[k];
        }
        y[m * N + n] = s0 + b;
        y[(m + 1) * N + n] = s1 + b;
        y[(m + 2) * N + n] = s2 + b;
        y[(m + 3) * N + n] = s3 + b;
      }
      for (; m < m1; ++m) {
        const float* x0 = x + m * K;
        v8f a0 = {}, a1 = {};
        int64_t k = 0;
        for (; k + 16 <= K8; k += 16) {
          a0 += GB_LOAD8(x0 + k) * GB_LOAD8(w + k);
          a1 += GB_LOAD8(x0 + k + 8) * GB_LOAD8(w + k + 8);
        }
        for (; k < K8; k += 8) a0 += GB_LOAD8(x0 + k) * GB_LOAD8(w + k);
        a0 += a1;
        float s = GB_HSUM(a0);
        for (k = K8; k < K; ++k) s += x0[k] * w[k];
        y[m * N + n] = s + b;
      }
    }
  }
}

}  // namespace

void linear_range(const float* x, int64_t rows, int64_t K, const float* W, const float* bias, int64_t N,
                  int64_t n0, int64_t n1, float* y) {
  linear_range_impl(x, rows, K, W, bias, N, n0, n1, y);
}

}  // namespace gb::kernels::cpu

// The CPU reference backend: every op as plain loops over f32, split across a
// thread pool. It is the oracle the CUDA kernels are checked against, so clarity
// wins over speed everywhere except linear(), which is where decode spends its
// time (one pass over the weights per token) and is written to run at memory
// bandwidth: 8-wide vector accumulators, up to four activation rows per weight
// row, compiled for AVX2+FMA with a generic fallback chosen at load time.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "engine/backend.h"
#include "engine/tensor.h"
#include "engine/thread_pool.h"

namespace gb::engine {
namespace {

class HostBuffer final : public Buffer {
 public:
  HostBuffer(void* p, size_t n) : p_(p), n_(n) {}
  ~HostBuffer() override { std::free(p_); }
  void* data() override { return p_; }
  size_t size() const override { return n_; }

 private:
  void* p_;
  size_t n_;
};

typedef float v8f __attribute__((vector_size(32)));
typedef float v8fu __attribute__((vector_size(32), aligned(4)));

// Macros rather than functions: a function passing or returning a 256-bit vector
// would have a different ABI in the generic clone (and clang refuses it).
#define GB_LOAD8(p) (*reinterpret_cast<const v8fu*>(p))
#define GB_HSUM(v) ((((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7])))

// y[m, n] = x[m, :] . W[n, :] (+ b[n]) for rows m in [0, rows) and n in [n0, n1).
__attribute__((target_clones("arch=x86-64-v3", "default")))
void linear_range(const float* x, int64_t rows, int64_t K, const float* W, const float* bias, int64_t N,
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

inline float load_kv(const void* base, KvElement e, int64_t i) {
  switch (e) {
    case KvElement::kF32: return static_cast<const float*>(base)[i];
    case KvElement::kF16: return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
    case KvElement::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
  }
  return 0;
}

inline void store_kv(void* base, KvElement e, int64_t i, float v) {
  switch (e) {
    case KvElement::kF32: static_cast<float*>(base)[i] = v; break;
    case KvElement::kF16: static_cast<uint16_t*>(base)[i] = f32_to_f16(v); break;
    case KvElement::kBF16: static_cast<uint16_t*>(base)[i] = f32_to_bf16(v); break;
  }
}

// Rotate-half RoPE of one head vector at `pos`.
inline void rope_one(float* h, int64_t pos, const RopeParams& rope) {
  const int64_t half = rope.rot_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    // As Hugging Face computes it: the angle rounded to f32, then cos and sin.
    const float angle = static_cast<float>(pos) * rope.inv_freq[i];
    const float c = std::cos(angle), s = std::sin(angle);
    const float x1 = h[i], x2 = h[i + half];
    h[i] = x1 * c - x2 * s;
    h[i + half] = x2 * c + x1 * s;
  }
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : pool_(threads) {}
  std::string_view name() const override { return "cpu"; }

  Result<std::unique_ptr<Buffer>> alloc(size_t bytes) override {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) & ~size_t{63};
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) return Error{"out of host memory allocating " + std::to_string(bytes) + " bytes"};
    return std::unique_ptr<Buffer>(new HostBuffer(p, bytes));
  }
  void upload(Buffer& dst, size_t off, const void* src, size_t n) override {
    std::memcpy(static_cast<uint8_t*>(dst.data()) + off, src, n);
  }
  void download(const Buffer& src, size_t off, void* dst, size_t n) override {
    std::memcpy(dst, static_cast<const uint8_t*>(const_cast<Buffer&>(src).data()) + off, n);
  }
  void copy(Buffer& dst, size_t doff, const Buffer& src, size_t soff, size_t n) override {
    std::memmove(static_cast<uint8_t*>(dst.data()) + doff,
                 static_cast<const uint8_t*>(const_cast<Buffer&>(src).data()) + soff, n);
  }
  void synchronize() override {}

  void embedding(const int32_t* ids, int64_t n, const float* table, int64_t dim, float* out) override {
    for (int64_t r = 0; r < n; ++r) std::memcpy(out + r * dim, table + int64_t{ids[r]} * dim, dim * sizeof(float));
  }

  void add_rows(const int64_t* positions, int64_t n, const float* table, int64_t dim, float* x) override {
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < dim; ++i) x[r * dim + i] += table[positions[r] * dim + i];
  }

  void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* out) override {
    pool_.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * dim;
        double ss = 0;
        for (int64_t i = 0; i < dim; ++i) ss += double{xr[i]} * xr[i];
        const float inv = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
        for (int64_t i = 0; i < dim; ++i) out[r * dim + i] = xr[i] * inv * w[i];
      }
    }, 16);
  }

  void layer_norm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                  float* out) override {
    pool_.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * dim;
        double sum = 0;
        for (int64_t i = 0; i < dim; ++i) sum += xr[i];
        const double mean = sum / dim;
        double var = 0;
        for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
        const double inv = 1.0 / std::sqrt(var / dim + eps);
        for (int64_t i = 0; i < dim; ++i)
          out[r * dim + i] = static_cast<float>((xr[i] - mean) * inv) * w[i] + b[i];
      }
    }, 16);
  }

  void linear(const float* x, int64_t rows, const LinearWeights& w, float* y) override {
    // Split the output features across threads: each thread streams its own
    // slice of W once per 64 activation rows.
    pool_.parallel_for(w.out, [&](int64_t n0, int64_t n1) {
      linear_range(x, rows, w.in, w.w, w.b, w.out, n0, n1, y);
    }, 16);
  }

  void rope(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim, const int64_t* positions,
            const RopeParams& rope) override {
    if (rope.rot_dim == 0) return;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t h = 0; h < heads; ++h) rope_one(x + r * row_stride + h * head_dim, positions[r], rope);
  }

  void kv_store(const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                const KvLayerView& cache, int64_t slot) override {
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < kv_width; ++i) {
        store_kv(cache.k, cache.element, (slot + r) * kv_width + i, k[r * row_stride + i]);
        store_kv(cache.v, cache.element, (slot + r) * kv_width + i, v[r * row_stride + i]);
      }
  }

  void attention(const float* q, int64_t n, int64_t q_stride, int64_t heads, int64_t kv_heads, int64_t head_dim,
                 const KvLayerView& cache, const int64_t* visible, const RopeParams& rope, float scale,
                 float* out) override {
    const int64_t kv_width = kv_heads * head_dim;
    const int64_t len = cache.len;
    // Keys and values as f32 (rotated where the cache keeps them unrotated),
    // materialised once per call rather than once per query head.
    const float* K = static_cast<const float*>(cache.k);
    const float* V = static_cast<const float*>(cache.v);
    if (cache.element != KvElement::kF32 || cache.keys_unrotated) {
      k_scratch_.resize(static_cast<size_t>(len * kv_width));
      v_scratch_.resize(static_cast<size_t>(len * kv_width));
      pool_.parallel_for(len, [&](int64_t s0, int64_t s1) {
        for (int64_t s = s0; s < s1; ++s) {
          for (int64_t i = 0; i < kv_width; ++i) {
            k_scratch_[s * kv_width + i] = load_kv(cache.k, cache.element, s * kv_width + i);
            v_scratch_[s * kv_width + i] = load_kv(cache.v, cache.element, s * kv_width + i);
          }
          if (cache.keys_unrotated && rope.rot_dim > 0)
            for (int64_t h = 0; h < kv_heads; ++h) rope_one(&k_scratch_[s * kv_width + h * head_dim], s, rope);
        }
      }, 16);
      K = k_scratch_.data();
      V = v_scratch_.data();
    }
    const int64_t group = heads / kv_heads;
    pool_.parallel_for(n * heads, [&](int64_t i0, int64_t i1) {
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
    }, 4);
  }

  void add(float* x, const float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
  }

  void silu_mul(const float* gu, int64_t rows, int64_t inner, float* out) override {
    pool_.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t i = 0; i < inner; ++i) {
          const float g = gu[r * 2 * inner + i], u = gu[r * 2 * inner + inner + i];
          out[r * inner + i] = g / (1.0f + std::exp(-g)) * u;
        }
    });
  }

  void gelu(float* x, int64_t n, bool tanh_approximation) override {
    pool_.parallel_for(n, [&](int64_t i0, int64_t i1) {
      if (tanh_approximation) {
        constexpr float kC = 0.7978845608028654f;  // sqrt(2 / pi)
        for (int64_t i = i0; i < i1; ++i) {
          const float v = x[i];
          x[i] = 0.5f * v * (1.0f + std::tanh(kC * (v + 0.044715f * v * v * v)));
        }
      } else {
        for (int64_t i = i0; i < i1; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
      }
    }, 4096);
  }

 private:
  ThreadPool pool_;
  std::vector<float> k_scratch_, v_scratch_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace gb::engine

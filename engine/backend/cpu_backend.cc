// The CPU reference backend: host memory, and each op dispatched to its kernel in
// kernels/cpu/ (one op per file) over ranges of rows split across a thread pool.
// It is the oracle the CUDA kernels are checked against, so the kernels are plain
// loops over f32 except linear(), which is where decode spends its time and is
// written to run at memory bandwidth on the packed weights (kernels/cpu/matmul.cc),
// with f32 activations or, in the q8 mode, activations quantized to 8 bits for the
// GGUF codecs that have q8 kernels (kernels/cpu/packed/activations_q8.h).
#include "engine/backend/cpu_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/check.h"
#include "engine/backend/thread_pool.h"
#include "kernels/codecs/float16.h"
#include "kernels/codecs/synthetic_quantize.h"
#include "kernels/codecs/synthetic_value.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/add.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/kv_store.h"
#include "kernels/cpu/logits.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/packed/packed_kernels.h"
#include "kernels/cpu/rope.h"

namespace gb::engine {
namespace {

namespace kc = kernels::cpu;

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

class CpuBackend final : public Backend {
 public:
  CpuBackend(int threads, kernels::cpu::ActivationMode activations) : pool_(threads), activations_(activations) {}
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

  // q8_0/q4_0/q4_K for the q8 kernels: rows interleaved by 8 in place (the codes are
  // in a buffer this backend allocated, host memory).
  void arrange_linear(PackedMatrix& w) override {
    using kernels::WeightCodec;
    const bool x8 = w.codec == WeightCodec::kQ8_0 || w.codec == WeightCodec::kQ4_0 || w.codec == WeightCodec::kQ4_K;
    const kernels::BlockShape bs = kernels::ggml_block_shape(w.codec);
    if (!x8 || w.interleave != 0 || activations_ != kc::ActivationMode::kQ8 || !kc::has_avx2_fma_f16c() ||
        w.rows < kernels::kInterleaveRows || w.cols % bs.elems != 0)
      return;
    kernels::x8_interleave_matrix(const_cast<uint8_t*>(w.codes), w.rows, w.cols / bs.elems, bs.bytes);
    w.interleave = kernels::kInterleaveRows;
  }

  bool fill_synthetic(Buffer& dst, size_t offset, uint64_t key, float mean, float stddev, uint64_t begin, int64_t n,
                      kernels::WeightCodec codec) override {
    using kernels::WeightCodec;
    if (codec != WeightCodec::kF32 && codec != WeightCodec::kF16 && codec != WeightCodec::kBF16) return false;
    uint8_t* out = static_cast<uint8_t*>(dst.data()) + offset;
    const double scale = kernels::synthetic_scale(stddev);
    pool_.parallel_for(n, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const float x = kernels::synthetic_element(key, mean, scale, begin + static_cast<uint64_t>(j));
        if (codec == WeightCodec::kF32)
          reinterpret_cast<float*>(out)[j] = x;
        else
          reinterpret_cast<uint16_t*>(out)[j] = codec == WeightCodec::kF16 ? kernels::f32_to_f16(x) : kernels::f32_to_bf16(x);
      }
    }, 1 << 16);
    return true;
  }

  bool quantizes_synthetic(const kernels::QuantSpec& spec, int64_t cols) const override {
    return kernels::synthetic_quantizable(spec.codec, spec.layout, spec.group, cols);
  }

  // Rows on the pool's threads; int8/fp8 per row: every row's absmax first (for a
  // per-tensor scale, their max), then the codes.
  void quantize_synthetic(uint64_t key, float mean, float stddev, const kernels::QuantSpec& spec, int64_t rows,
                          int64_t cols, const kernels::QuantizedArraysOut& out) override {
    GB_CHECK(quantizes_synthetic(spec, cols));
    const kernels::SyntheticDrawAt d{key, mean, kernels::synthetic_scale(stddev), 0};
    if (!kernels::synthetic_row_codec(spec.codec, spec.layout)) {
      if (spec.codec == kernels::WeightCodec::kInt4) std::memset(out.codes, 0, static_cast<size_t>(rows) * out.row_bytes);
      const int64_t gpr = cols / kernels::synthetic_group_elems(spec.codec, spec.group);
      pool_.parallel_for(rows, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t j = 0; j < gpr; ++j) {
            if (kernels::is_k_ggml_codec(spec.codec))
              kernels::synthetic_quantize_k_block(spec.codec, d, cols, r, j, out);
            else
              kernels::synthetic_quantize_group(spec.codec, spec.group, d, cols, r, j, out);
          }
      }, 1);
      return;
    }
    float* scales = reinterpret_cast<float*>(out.scales);
    const float qmax = kernels::symmetric_qmax(spec.codec);
    pool_.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) scales[r] = kernels::synthetic_row_absmax(d, cols, r);
    }, 1);
    float amax = 0;
    for (int64_t r = 0; r < rows; ++r) amax = std::max(amax, scales[r]);
    for (int64_t r = 0; r < rows; ++r) scales[r] = (spec.per_tensor ? amax : scales[r]) / qmax;
    pool_.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        kernels::SyntheticDrawAt row = d;
        row.base = static_cast<uint64_t>(r) * static_cast<uint64_t>(cols);
        const float inv = kernels::symmetric_inverse(scales[r]);
        uint8_t* codes = out.codes + static_cast<size_t>(r) * out.row_bytes;
        for (int64_t c = 0; c < cols; ++c) codes[c] = kernels::symmetric_code(spec.codec, row(c), inv);
      }
    }, 1);
  }

  void embedding(const int32_t* ids, int64_t n, const PackedMatrix& table, float* out) override {
    kc::embedding_rows(ids, n, table, out);
  }

  void add_rows(const int64_t* positions, int64_t n, const float* table, int64_t dim, float* x) override {
    kc::add_position_rows(positions, n, table, dim, x);
  }

  void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* out) override {
    pool_.parallel_for(rows, [&](int64_t r0, int64_t r1) { kc::rms_norm_rows(x, r0, r1, dim, w, eps, out); }, 16);
  }

  void layer_norm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                  float* out) override {
    pool_.parallel_for(rows, [&](int64_t r0, int64_t r1) { kc::layer_norm_rows(x, r0, r1, dim, w, b, eps, out); }, 16);
  }

  void add_rms_norm(float* x, const float* y, int64_t rows, int64_t dim, const float* w, float eps,
                    float* out) override {
    kc::add(x, y, rows * dim);
    rms_norm(x, rows, dim, w, eps, out);
  }

  void add_layer_norm(float* x, const float* y, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                      float* out) override {
    kc::add(x, y, rows * dim);
    layer_norm(x, rows, dim, w, b, eps, out);
  }

  void linear(const float* x, int64_t rows, const LinearWeights& w, float* y) override {
    // Split the output features across threads: each thread streams its own
    // slice of W once per 64 activation rows.
    const int64_t out = w.out();
    if (w.compute != kernels::ComputeDtype::kF32) return linear_rounded(x, rows, w, y);
    if (w.activations != ActivationQuant::kNone || w.act_mul != nullptr) return linear_token_quantized(x, rows, w, y);
    // q8 mode: the activations quantized once, for every part that has a q8 kernel.
    const kc::QuantizedActivations* xq = nullptr;
    if (activations_ == kc::ActivationMode::kQ8) {
      xq_.reset(x, rows, w.in());
      for (const PackedMatrix& p : w.parts) {
        if (kc::q8_activation_block(p.codec) > 0 && p.cols % kc::q8_activation_block(p.codec) == 0) {
          xq_.prepare(p.codec);
          xq = &xq_;
        }
      }
    }
    // Chunks of whole 16-row tiles, four per thread, taken by whichever thread is
    // free: a thread the OS preempts does not hold the layer's end up.
    const int64_t chunk = std::max<int64_t>(16, (out / (4 * pool_.size()) + 15) / 16 * 16);
    pool_.parallel_chunks(out, chunk, [&](int64_t n0, int64_t n1) {
      int64_t offset = 0;
      for (const PackedMatrix& p : w.parts) {
        const int64_t lo = std::max(n0, offset), hi = std::min(n1, offset + p.rows);
        if (lo < hi) kc::linear_range(x, rows, p, w.b ? w.b + offset : nullptr, lo - offset, hi - offset, y + offset, out, xq);
        offset += p.rows;
      }
    });
  }

  // A compute dtype (bf16, f16): x rounded to it once, then every part through the
  // row dequantizer with its weights, bias and outputs rounded (kernels/cpu/matmul.h).
  void linear_rounded(const float* x, int64_t rows, const LinearWeights& w, float* y) {
    GB_CHECK(w.activations == ActivationQuant::kNone && w.act_mul == nullptr);
    const int64_t out = w.out();
    xm_.resize(static_cast<size_t>(rows * w.in()));
    kc::round_to_compute_dtype(x, rows * w.in(), w.compute, xm_.data());
    pool_.parallel_chunks(out, std::max<int64_t>(16, out / (4 * pool_.size())), [&](int64_t n0, int64_t n1) {
      int64_t offset = 0;
      for (const PackedMatrix& p : w.parts) {
        const int64_t lo = std::max(n0, offset), hi = std::min(n1, offset + p.rows);
        if (lo < hi)
          kc::linear_range_rounded(xm_.data(), rows, p, w.b ? w.b + offset : nullptr, lo - offset, hi - offset,
                                   y + offset, out, w.compute);
        offset += p.rows;
      }
    });
  }

  // W8A8 / LLM.int8(): x quantized per token once (SmoothQuant's act_mul applied
  // first), then each int8/fp8 part through the per-token kernels; any other part
  // (and every part of a fake: SmoothQuant format) reads x (times act_mul) in f32.
  void linear_token_quantized(const float* x, int64_t rows, const LinearWeights& w, float* y) {
    const int64_t out = w.out(), in = w.in();
    const bool quantized = w.activations != ActivationQuant::kNone;
    if (quantized) kc::quantize_tokens(x, rows, in, w.activations, w.outlier_threshold, w.act_mul, &xt_);
    const float* xf = x;
    if (w.act_mul != nullptr) {
      xm_.resize(static_cast<size_t>(rows * in));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < in; ++j) xm_[static_cast<size_t>(r * in + j)] = x[r * in + j] * w.act_mul[j];
      xf = xm_.data();
    }
    pool_.parallel_for(out, [&](int64_t n0, int64_t n1) {
      int64_t offset = 0;
      for (const PackedMatrix& p : w.parts) {
        const int64_t lo = std::max(n0, offset), hi = std::min(n1, offset + p.rows);
        const float* b = w.b ? w.b + offset : nullptr;
        if (lo < hi) {
          if (quantized && kc::w8a8_kernel_supports(p)) kc::linear_w8a8_range(xt_, p, b, lo - offset, hi - offset, y + offset, out);
          else kc::linear_range(xf, rows, p, b, lo - offset, hi - offset, y + offset, out);
        }
        offset += p.rows;
      }
    }, 16);
  }

  std::string linear_kernel(const PackedMatrix& w) const override {
    return kc::linear_kernel_name(w, activations_);
  }

  void rope(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim, const int64_t* positions,
            const RopeParams& rope) override {
    if (rope.rot_dim == 0) return;
    kc::rope_rows(x, rows, row_stride, heads, head_dim, positions, rope.rot_dim, rope.inv_freq);
  }

  void kv_store(const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                const KvLayerView& cache, const int64_t* visible) override {
    // Runs of rows whose slots follow each other (every row of a forward step's
    // sequence) are stored in one call.
    for (int64_t r0 = 0, r1 = 1; r0 < n; r0 = r1, r1 = r0 + 1) {
      while (r1 < n && visible[r1] == visible[r1 - 1] + 1) ++r1;
      GB_CHECK(visible[r0] >= 1);  // the interface's precondition
      store_run(k + r0 * row_stride, v + r0 * row_stride, r1 - r0, row_stride, kv_width, cache, visible[r0] - 1);
    }
  }

  // Rows [0, n) into slots [slot, slot + n).
  void store_run(const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                 const KvLayerView& cache, int64_t slot) {
    const kernels::KvPlane kp = cache.k_plane(), vp = cache.v_plane();
    if (kernels::kv_element_quantized(cache.element)) {
      const kernels::KvSlotLayout L = cache.layout();
      pool_.parallel_for(n, [&](int64_t r0, int64_t r1) {
        kc::kv_store_packed_rows(k + r0 * row_stride, v + r0 * row_stride, r1 - r0, row_stride, L, kp, vp,
                                 cache.k_calib, cache.v_calib, slot + r0);
      }, 16);
      return;
    }
    kc::kv_store_rows(k, v, n, row_stride, kv_width, kp, vp, cache.element, slot);
  }

  void attention(const float* q, int64_t n, int64_t q_stride, int64_t heads, int64_t kv_heads, int64_t head_dim,
                 const KvLayerView& cache, const int64_t* visible, const RopeParams& rope, float scale,
                 float* out) override {
    const int64_t kv_width = kv_heads * head_dim;
    const int64_t len = cache.len;
    if (kernels::kv_element_quantized(cache.element)) {
      // Read as stored: the dequantization is fused into the products.
      kc::KvPackedPlanes planes{cache.layout(), cache.k_plane(), cache.v_plane(), cache.k_calib, cache.v_calib};
      const float* cs = nullptr;
      const int64_t rot_dim = cache.keys_unrotated ? rope.rot_dim : 0;
      if (rot_dim > 0) {
        k_scratch_.resize(static_cast<size_t>(len * rot_dim));
        kc::kv_rope_table(len, rot_dim, rope.inv_freq, k_scratch_.data());
        cs = k_scratch_.data();
      }
      const kc::KvIsa isa = kc::kv_best_isa();
      pool_.parallel_for(n * heads, [&](int64_t i0, int64_t i1) {
        kc::attention_packed_range(q, q_stride, heads, planes, cs, rot_dim, visible, scale, i0, i1, out, isa);
      }, 4);
      return;
    }
    // Keys and values as f32 (rotated where the cache keeps them unrotated),
    // materialised once per call rather than once per query head.
    kernels::KvPlane K = cache.k_plane(), V = cache.v_plane();
    if (cache.element != KvElement::kF32 || cache.keys_unrotated) {
      k_scratch_.resize(static_cast<size_t>(len * kv_width));
      v_scratch_.resize(static_cast<size_t>(len * kv_width));
      const int64_t rot_dim = cache.keys_unrotated ? rope.rot_dim : 0;
      pool_.parallel_for(len, [&](int64_t s0, int64_t s1) {
        kc::kv_load_rows(K, V, cache.element, s0, s1, kv_width, head_dim, rot_dim, rope.inv_freq,
                         k_scratch_.data(), v_scratch_.data());
      }, 16);
      const size_t row_bytes = static_cast<size_t>(kv_width) * sizeof(float);
      K = kernels::KvPlane::contiguous(k_scratch_.data(), row_bytes);
      V = kernels::KvPlane::contiguous(v_scratch_.data(), row_bytes);
    }
    pool_.parallel_chunks(n * heads, std::max<int64_t>(1, n * heads / (4 * pool_.size())), [&](int64_t i0, int64_t i1) {
      kc::attention_range(q, q_stride, heads, kv_heads, head_dim, K, V, len, visible, scale, i0, i1, out);
    });
  }

  void add(float* x, const float* y, int64_t n) override { kc::add(x, y, n); }

  void silu_mul(const float* gu, int64_t rows, int64_t inner, float* out) override {
    pool_.parallel_for(rows, [&](int64_t r0, int64_t r1) { kc::silu_mul_rows(gu, r0, r1, inner, out); });
  }

  void gelu(float* x, int64_t n, bool tanh_approximation) override {
    pool_.parallel_for(n, [&](int64_t i0, int64_t i1) { kc::gelu_range(x, i0, i1, tanh_approximation); }, 4096);
  }

  void argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* ids) override {
    for (int64_t r = 0; r < rows; ++r) ids[r] = kc::argmax_row(logits + r * vocab, vocab);
  }

  void sample_rows(const float* logits, int64_t rows, int64_t vocab, const SamplingCut& cut, const double* u,
                   int32_t* ids) override {
    for (int64_t r = 0; r < rows; ++r)
      ids[r] = kc::sample_row(logits + r * vocab, vocab, cut.temperature, cut.top_k, cut.top_p, u[r]);
  }

  void target_log_probs(const float* logits, int64_t rows, int64_t vocab, const int32_t* targets,
                        double* lp) override {
    pool_.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        lp[r] = targets[r] < 0 ? 0.0 : kc::target_log_prob_row(logits + r * vocab, vocab, targets[r]);
    });
  }

 private:
  ThreadPool pool_;
  kc::ActivationMode activations_;
  kc::QuantizedActivations xq_;
  kc::TokenActivations xt_;
  std::vector<float> xm_;
  std::vector<float> k_scratch_, v_scratch_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads, kernels::cpu::ActivationMode activations) {
  return std::make_unique<CpuBackend>(threads, activations);
}

}  // namespace gb::engine

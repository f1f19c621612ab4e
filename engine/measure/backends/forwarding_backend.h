// A Backend that forwards every op to another one: the base of the measuring
// wrappers (budget_backend.h counts allocations, op_timer_backend.h times ops),
// which override what they observe. Buffers pass through unchanged unless a
// wrapper wraps them (then it overrides the memory calls too).
#pragma once

#include "engine/backend/backend.h"

namespace gb::engine {

class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(Backend& inner) : inner_(inner) {}

  std::string_view name() const override { return inner_.name(); }
  void set_memory_use(MemoryUse use) override { inner_.set_memory_use(use); }
  MemoryUse memory_use() const override { return inner_.memory_use(); }
  Result<std::unique_ptr<Buffer>> alloc(size_t bytes) override { return inner_.alloc(bytes); }
  void upload(Buffer& dst, size_t offset, const void* src, size_t bytes) override {
    inner_.upload(dst, offset, src, bytes);
  }
  void download(const Buffer& src, size_t offset, void* dst, size_t bytes) override {
    inner_.download(src, offset, dst, bytes);
  }
  void copy(Buffer& dst, size_t dst_offset, const Buffer& src, size_t src_offset, size_t bytes) override {
    inner_.copy(dst, dst_offset, src, src_offset, bytes);
  }
  void synchronize() override { inner_.synchronize(); }
  Status take_error() override { return inner_.take_error(); }

  void embedding(const int32_t* ids, int64_t n, const PackedMatrix& table, float* out) override {
    inner_.embedding(ids, n, table, out);
  }
  void add_rows(const int64_t* positions, int64_t n, const float* table, int64_t dim, float* x) override {
    inner_.add_rows(positions, n, table, dim, x);
  }
  void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* out) override {
    inner_.rms_norm(x, rows, dim, w, eps, out);
  }
  void layer_norm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                  float* out) override {
    inner_.layer_norm(x, rows, dim, w, b, eps, out);
  }
  void add_rms_norm(float* x, const float* y, int64_t rows, int64_t dim, const float* w, float eps,
                    float* out) override {
    inner_.add_rms_norm(x, y, rows, dim, w, eps, out);
  }
  void add_layer_norm(float* x, const float* y, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                      float* out) override {
    inner_.add_layer_norm(x, y, rows, dim, w, b, eps, out);
  }
  void arrange_linear(PackedMatrix& w) override { inner_.arrange_linear(w); }
  bool fill_synthetic(Buffer& dst, size_t offset, uint64_t key, float mean, float stddev, uint64_t begin, int64_t n,
                      kernels::WeightCodec codec) override {
    return inner_.fill_synthetic(dst, offset, key, mean, stddev, begin, n, codec);
  }
  bool quantizes_synthetic(const kernels::QuantSpec& spec, int64_t cols) const override {
    return inner_.quantizes_synthetic(spec, cols);
  }
  void quantize_synthetic(uint64_t key, float mean, float stddev, const kernels::QuantSpec& spec, int64_t rows,
                          int64_t cols, const kernels::QuantizedArraysOut& out) override {
    inner_.quantize_synthetic(key, mean, stddev, spec, rows, cols, out);
  }
  void linear(const float* x, int64_t rows, const LinearWeights& w, float* y) override { inner_.linear(x, rows, w, y); }
  std::string linear_kernel(const PackedMatrix& w) const override { return inner_.linear_kernel(w); }
  void rope(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim, const int64_t* positions,
            const RopeParams& rope) override {
    inner_.rope(x, rows, row_stride, heads, head_dim, positions, rope);
  }
  void kv_store(const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                const KvLayerView& cache, const int64_t* visible) override {
    inner_.kv_store(k, v, n, row_stride, kv_width, cache, visible);
  }
  void attention(const float* q, int64_t n, int64_t q_stride, int64_t heads, int64_t kv_heads, int64_t head_dim,
                 const KvLayerView& cache, const int64_t* visible, const RopeParams& rope, float scale,
                 float* out) override {
    inner_.attention(q, n, q_stride, heads, kv_heads, head_dim, cache, visible, rope, scale, out);
  }
  void add(float* x, const float* y, int64_t n) override { inner_.add(x, y, n); }
  void silu_mul(const float* gu, int64_t rows, int64_t inner, float* out) override {
    inner_.silu_mul(gu, rows, inner, out);
  }
  void gelu(float* x, int64_t n, bool tanh_approximation) override { inner_.gelu(x, n, tanh_approximation); }
  void argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* ids) override {
    inner_.argmax_rows(logits, rows, vocab, ids);
  }
  void sample_rows(const float* logits, int64_t rows, int64_t vocab, const SamplingCut& cut, const double* u,
                   int32_t* ids) override {
    inner_.sample_rows(logits, rows, vocab, cut, u, ids);
  }
  void target_log_probs(const float* logits, int64_t rows, int64_t vocab, const int32_t* targets,
                        double* lp) override {
    inner_.target_log_probs(logits, rows, vocab, targets, lp);
  }

 protected:
  Backend& inner_;
};

}  // namespace gb::engine

// A Backend that times every op it forwards, by category: attention (attention and
// the KV-cache writes), linear layers, norms, and the other ops (embedding, RoPE,
// residual adds, activations). On the CPU every op runs to completion before it
// returns, so the wall time around a call is the op's time; on a device backend each
// timed op synchronizes before and after (so ops no longer overlap the host's work,
// which changes what it measures: the breakdown is of ops run one at a time).
// The `speed` kind's op breakdown (`op_breakdown: true`) runs its timed runs on it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "engine/measure/backends/forwarding_backend.h"

namespace gb::engine {

enum class OpCategory { kAttention = 0, kLinear, kNorm, kOther };
inline constexpr int kOpCategories = 4;

struct OpTotals {
  std::array<double, kOpCategories> ms{};
  std::array<int64_t, kOpCategories> calls{};
};

class OpTimerBackend final : public ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;

  const OpTotals& totals() const { return totals_; }
  void reset() { totals_ = OpTotals{}; }

  void embedding(const int32_t* ids, int64_t n, const PackedMatrix& table, float* out) override {
    Timed t(*this, OpCategory::kOther);
    inner_.embedding(ids, n, table, out);
  }
  void add_rows(const int64_t* positions, int64_t n, const float* table, int64_t dim, float* x) override {
    Timed t(*this, OpCategory::kOther);
    inner_.add_rows(positions, n, table, dim, x);
  }
  void add_rms_norm(float* x, const float* y, int64_t rows, int64_t dim, const float* w, float eps,
                    float* out) override {
    Timed t(*this, OpCategory::kNorm);  // the residual add counts with its norm
    inner_.add_rms_norm(x, y, rows, dim, w, eps, out);
  }
  void add_layer_norm(float* x, const float* y, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                      float* out) override {
    Timed t(*this, OpCategory::kNorm);
    inner_.add_layer_norm(x, y, rows, dim, w, b, eps, out);
  }
  void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* out) override {
    Timed t(*this, OpCategory::kNorm);
    inner_.rms_norm(x, rows, dim, w, eps, out);
  }
  void layer_norm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                  float* out) override {
    Timed t(*this, OpCategory::kNorm);
    inner_.layer_norm(x, rows, dim, w, b, eps, out);
  }
  void linear(const float* x, int64_t rows, const LinearWeights& w, float* y) override {
    Timed t(*this, OpCategory::kLinear);
    inner_.linear(x, rows, w, y);
  }
  void rope(float* x, int64_t rows, int64_t row_stride, int64_t heads, int64_t head_dim, const int64_t* positions,
            const RopeParams& rope) override {
    Timed t(*this, OpCategory::kOther);
    inner_.rope(x, rows, row_stride, heads, head_dim, positions, rope);
  }
  void kv_store(const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                const KvLayerView& cache, const int64_t* visible) override {
    Timed t(*this, OpCategory::kAttention, /*count=*/false);  // part of attention, not a call of its own
    inner_.kv_store(k, v, n, row_stride, kv_width, cache, visible);
  }
  void attention(const float* q, int64_t n, int64_t q_stride, int64_t heads, int64_t kv_heads, int64_t head_dim,
                 const KvLayerView& cache, const int64_t* visible, const RopeParams& rope, float scale,
                 float* out) override {
    Timed t(*this, OpCategory::kAttention);
    inner_.attention(q, n, q_stride, heads, kv_heads, head_dim, cache, visible, rope, scale, out);
  }
  void add(float* x, const float* y, int64_t n) override {
    Timed t(*this, OpCategory::kOther);
    inner_.add(x, y, n);
  }
  void silu_mul(const float* gu, int64_t rows, int64_t inner, float* out) override {
    Timed t(*this, OpCategory::kOther);
    inner_.silu_mul(gu, rows, inner, out);
  }
  void gelu(float* x, int64_t n, bool tanh_approximation) override {
    Timed t(*this, OpCategory::kOther);
    inner_.gelu(x, n, tanh_approximation);
  }

 private:
  struct Timed {
    // A device backend's queue is drained before and after the op (synchronize() is a
    // no-op on the CPU), so that the wall time is the op's own.
    Timed(OpTimerBackend& b, OpCategory c, bool count = true)
        : b_(b), c_(static_cast<int>(c)), count_(count), t0_(drained_now(b)) {}
    ~Timed() {
      b_.inner_.synchronize();
      b_.totals_.ms[c_] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count();
      if (count_) ++b_.totals_.calls[c_];
    }
    static std::chrono::steady_clock::time_point drained_now(OpTimerBackend& b) {
      b.inner_.synchronize();
      return std::chrono::steady_clock::now();
    }
    OpTimerBackend& b_;
    int c_;
    bool count_;
    std::chrono::steady_clock::time_point t0_;
  };
  OpTotals totals_;
};

}  // namespace gb::engine

// What the CUDA backend tests share: the CPU reference and a CUDA backend side by
// side, buffers on either made from the same host data, and the error measure the
// named tolerances bound. Test helpers only.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "engine/backend/cuda_backend.h"
#include "kernels/quantize/quantize_matrix.h"

namespace gb::testing {

using engine::Backend;
using engine::Buffer;
using kernels::PackedMatrix;
using kernels::QuantizedMatrix;

// Buffers on one backend, owned here; pointers handed to ops, read back by pointer.
class Arena {
 public:
  explicit Arena(Backend& b) : b_(b) {}
  Backend& backend() { return b_; }

  void* bytes(const void* data, size_t n) {
    Result<std::unique_ptr<Buffer>> buf = b_.alloc(std::max<size_t>(n, 1));
    GB_CHECK(buf.ok());
    if (data != nullptr && n > 0) b_.upload(**buf, 0, data, n);
    owned_.push_back(std::move(*buf));
    return owned_.back()->data();
  }
  float* put(const std::vector<float>& v) { return static_cast<float*>(bytes(v.data(), v.size() * sizeof(float))); }
  float* zeros(size_t n) { return put(std::vector<float>(n, 0.0f)); }

  // Every array of a host-quantized matrix in this backend's memory.
  PackedMatrix matrix(const QuantizedMatrix& q) {
    PackedMatrix m = q.view();
    m.codes = static_cast<const uint8_t*>(bytes(q.codes.data(), q.codes.size()));
    if (!q.scales.empty()) m.scales = bytes(q.scales.data(), q.scales.size());
    if (!q.zeros.empty()) m.zeros = bytes(q.zeros.data(), q.zeros.size());
    if (q.spec.double_quant) {
      m.dq_code = static_cast<const float*>(bytes(q.view().dq_code, 256 * sizeof(float)));
      m.dq_scales = static_cast<const float*>(bytes(q.dq_scales.data(), q.dq_scales.size() * sizeof(float)));
      m.dq_offsets = static_cast<const float*>(bytes(q.dq_offsets.data(), q.dq_offsets.size() * sizeof(float)));
      if (!q.block_row_index.empty())
        m.block_row_index = static_cast<const uint32_t*>(
            bytes(q.block_row_index.data(), q.block_row_index.size() * sizeof(uint32_t)));
    }
    return m;
  }

  // n bytes at p (inside a buffer of this arena), after the backend's queue drains.
  std::vector<uint8_t> get_bytes(const void* p, size_t n) {
    for (const auto& b : owned_) {
      const uint8_t* base = static_cast<const uint8_t*>(b->data());
      const uint8_t* q = static_cast<const uint8_t*>(p);
      if (q >= base && q + n <= base + b->size()) {
        std::vector<uint8_t> out(n);
        b_.download(*b, static_cast<size_t>(q - base), out.data(), n);
        b_.synchronize();
        return out;
      }
    }
    GB_CHECK(false);  // not a pointer into this arena
    return {};
  }
  std::vector<float> get(const float* p, size_t n) {
    std::vector<uint8_t> raw = get_bytes(p, n * sizeof(float));
    std::vector<float> out(n);
    std::memcpy(out.data(), raw.data(), raw.size());
    return out;
  }

 private:
  Backend& b_;
  std::vector<std::unique_ptr<Buffer>> owned_;
};

// max_i |got_i - want_i| / max(max_i |want_i|, 1e-30): the error every named
// tolerance bounds (relative to the output's scale, so that a near-zero element
// does not dominate). Sizes must match (a mismatch is infinity).
inline double max_rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return INFINITY;
  double scale = 1e-30, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::fabs(double{want[i]}));
    const double d = std::fabs(double{got[i]} - double{want[i]});
    if (!(d <= err)) err = std::isnan(d) ? INFINITY : d;
  }
  return err / scale;
}

// Relative RMS of got against want (whole-model logits).
inline double rel_rms(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size() || want.empty()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (double{got[i]} - want[i]) * (double{got[i]} - want[i]);
    den += double{want[i]} * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

inline std::vector<float> random_normal(size_t n, uint64_t seed, float stddev = 1.0f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

// The CUDA backend on cuda:0 (the caller has checked a GPU is present).
inline std::unique_ptr<engine::CudaBackend> cuda_backend_or_die() {
  Result<std::unique_ptr<engine::CudaBackend>> b = engine::make_cuda_backend(0);
  GB_CHECK(b.ok());
  return std::move(*b);
}

}  // namespace gb::testing

// The CPU backend's linear op (engine/backend/cpu_backend.cc) on a fused layer
// whose parts are stored in different codecs (as llama.cpp's q4_K_M files store
// q|k|v), split across threads: with f32 activations it equals the reference
// matmul of each part; in the q8 mode it quantizes the activations once for every
// block size its parts need (q8_0's 32, q8_K's 256), the parts without a q8
// kernel still read f32, and the output moves by no more than the q8 budget; and
// a bf16 / f16 compute dtype against a direct emulation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/backend/cpu_backend.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/packed/packed_kernels.h"
#include "kernels/quantize/quantize_matrix.h"

namespace gb::engine {
namespace {

using kernels::QuantizedMatrix;
using kernels::QuantSpec;

// How far 8-bit activations may move a layer's output (relative RMS), as in
// tests/kernels/cpu/packed_linear_test.cc.
constexpr double kMaxQ8ModeRelErr = 0.015;
constexpr double kTol = 1e-4;  // f32 mode against the reference: summation order only

std::vector<float> normal(int64_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(g);
  return v;
}

TEST(CpuBackendLinear, FusedPartsInMixedCodecsInBothActivationModes) {
  constexpr int64_t in = 512, rows = 5;
  const WeightCodec codecs[] = {WeightCodec::kQ4_K, WeightCodec::kQ6_K, WeightCodec::kQ8_0, WeightCodec::kF16};
  const int64_t outs[] = {40, 24, 16, 8};
  std::vector<QuantizedMatrix> parts;
  LinearWeights lw;
  for (int i = 0; i < 4; ++i) {
    QuantSpec s;
    s.codec = codecs[i];
    const std::vector<float> w = normal(outs[i] * in, 100 + static_cast<uint64_t>(i));
    auto q = kernels::quantize_matrix(s, w.data(), outs[i], in, "part");
    ASSERT_TRUE(q.ok()) << q.message();
    parts.push_back(std::move(*q));
  }
  for (const QuantizedMatrix& q : parts) lw.parts.push_back(q.view());
  const int64_t out = lw.out();
  const std::vector<float> bias = normal(out, 7);
  lw.b = bias.data();
  const std::vector<float> x = normal(rows * in, 8);

  std::vector<float> want(static_cast<size_t>(rows * out));
  int64_t offset = 0;
  for (const PackedMatrix& p : lw.parts) {
    kernels::cpu::linear_range_reference(x.data(), rows, p, bias.data() + offset, 0, p.rows, want.data() + offset, out);
    offset += p.rows;
  }

  auto f32 = make_cpu_backend(2, ActivationMode::kF32);
  auto q8 = make_cpu_backend(2, ActivationMode::kQ8);
  std::vector<float> y32(want.size()), y8(want.size());
  f32->linear(x.data(), rows, lw, y32.data());
  q8->linear(x.data(), rows, lw, y8.data());
  double num = 0, den = 0, f16_diff = 0;
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t n = 0; n < out; ++n) {
      const size_t i = static_cast<size_t>(m * out + n);
      ASSERT_NEAR(y32[i], want[i], kTol * (1 + std::fabs(want[i]))) << m << "," << n;
      if (n >= 80) f16_diff = std::max(f16_diff, double{std::fabs(y8[i] - y32[i])});  // the f16 part
      num += (double{y8[i]} - want[i]) * (double{y8[i]} - want[i]);
      den += (double{want[i]} - bias[static_cast<size_t>(n)]) * (double{want[i]} - bias[static_cast<size_t>(n)]);
    }
  EXPECT_EQ(f16_diff, 0.0) << "the f16 part has no q8 kernel: it reads f32 activations in both modes";
  const double rel = std::sqrt(num / den);
  EXPECT_LT(rel, kMaxQ8ModeRelErr);
  EXPECT_GT(rel, 0.0) << "the q8 mode did not quantize the activations";
  EXPECT_EQ(q8->linear_kernel(lw.parts[0]), kernels::cpu::has_avx2_fma_f16c() ? "q4_k-q8-avx2" : "q4_k-q8-scalar");
  EXPECT_EQ(f32->linear_kernel(lw.parts[2]), "q8_0-dequant");  // f32 activations: the row dequantizer
}

// A compute dtype (the `compute` parameter, bitsandbytes' bnb_4bit_compute_dtype) on
// an fp4 layer in two parts with a bias: the output equals a direct emulation (x,
// each weight as fp4's reference dequantizer gives it, and the bias rounded to the
// dtype; the products summed in f64; the output rounded to the dtype) to one unit in
// the output's last place, and differs from f32 compute by a bounded, nonzero amount.
TEST(CpuBackendLinear, ComputeDtypeRoundsInputsWeightsAndOutputs) {
  constexpr int64_t in = 256, rows = 3;
  const int64_t outs[] = {40, 24};
  std::vector<QuantizedMatrix> parts;
  LinearWeights lw;
  for (int i = 0; i < 2; ++i) {
    QuantSpec s;
    s.codec = WeightCodec::kFp4;
    s.group = 64;
    const std::vector<float> w = normal(outs[i] * in, 200 + static_cast<uint64_t>(i));
    auto q = kernels::quantize_matrix(s, w.data(), outs[i], in, "part");
    ASSERT_TRUE(q.ok()) << q.message();
    parts.push_back(std::move(*q));
  }
  for (const QuantizedMatrix& q : parts) lw.parts.push_back(q.view());
  const int64_t out = lw.out();
  const std::vector<float> bias = normal(out, 9);
  lw.b = bias.data();
  const std::vector<float> x = normal(rows * in, 10);
  auto backend = make_cpu_backend(2);
  std::vector<float> y32(static_cast<size_t>(rows * out));
  backend->linear(x.data(), rows, lw, y32.data());

  // How far bf16 / f16 compute may move this layer's output from f32 compute (relative RMS).
  constexpr double kMaxBf16ComputeRelErr = 0.01, kMaxF16ComputeRelErr = 0.002;
  for (const auto& [dtype, budget] : {std::pair{kernels::ComputeDtype::kBf16, kMaxBf16ComputeRelErr},
                                      std::pair{kernels::ComputeDtype::kF16, kMaxF16ComputeRelErr}}) {
    const char* name = kernels::compute_dtype_name(dtype);
    auto r = [dtype](double v) { return double{kernels::round_to_compute_dtype(static_cast<float>(v), dtype)}; };
    std::vector<double> want(y32.size());
    int64_t offset = 0;
    for (const PackedMatrix& p : lw.parts) {
      std::vector<float> wrow(static_cast<size_t>(in));
      for (int64_t n = 0; n < p.rows; ++n) {
        kernels::dequantize_row(p, n, wrow.data());
        for (int64_t m = 0; m < rows; ++m) {
          double acc = 0;
          for (int64_t k = 0; k < in; ++k) acc += r(x[static_cast<size_t>(m * in + k)]) * r(wrow[static_cast<size_t>(k)]);
          want[static_cast<size_t>(m * out + offset + n)] = r(acc + r(bias[static_cast<size_t>(offset + n)]));
        }
      }
      offset += p.rows;
    }
    lw.compute = dtype;
    std::vector<float> y(y32.size());
    backend->linear(x.data(), rows, lw, y.data());
    lw.compute = kernels::ComputeDtype::kF32;
    // One unit in the last place: the f32 sum and the f64 one may round to neighbours.
    const double ulp = dtype == kernels::ComputeDtype::kBf16 ? 1.0 / 128 : 1.0 / 1024;
    double num = 0, den = 0;
    int64_t exact = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_LE(std::fabs(y[i] - want[i]), ulp * std::fabs(want[i]) + 1e-30) << name << " " << i;
      exact += y[i] == want[i];
      num += (double{y[i]} - y32[i]) * (double{y[i]} - y32[i]);
      den += double{y32[i]} * y32[i];
    }
    EXPECT_GT(exact, static_cast<int64_t>(y.size()) * 9 / 10) << name;
    const double rel = std::sqrt(num / den);
    EXPECT_GT(rel, 0.0) << name << " compute computed exactly what f32 does";
    EXPECT_LT(rel, budget) << name;
    RecordProperty(std::string(name) + "_rel_rms_vs_f32", std::to_string(rel));
  }
}

// The fused residual norms are add() and then the norm, bit for bit (the model's
// outputs do not move when it fuses them), the sum left in x.
TEST(CpuBackendNorms, FusedResidualAddEqualsAddThenNorm) {
  std::unique_ptr<Backend> b = make_cpu_backend(2);
  const int64_t rows = 5, dim = 67;
  std::mt19937 g(3);
  std::normal_distribution<float> d(0.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(rows * dim)), y(x.size()), w(static_cast<size_t>(dim)), bias(w.size());
  for (auto* v : {&x, &y, &w, &bias})
    for (float& e : *v) e = d(g);
  for (bool layer : {false, true}) {
    std::vector<float> x1 = x, x2 = x, want(x.size()), got(x.size());
    b->add(x1.data(), y.data(), rows * dim);
    if (layer) {
      b->layer_norm(x1.data(), rows, dim, w.data(), bias.data(), 1e-5f, want.data());
      b->add_layer_norm(x2.data(), y.data(), rows, dim, w.data(), bias.data(), 1e-5f, got.data());
    } else {
      b->rms_norm(x1.data(), rows, dim, w.data(), 1e-5f, want.data());
      b->add_rms_norm(x2.data(), y.data(), rows, dim, w.data(), 1e-5f, got.data());
    }
    EXPECT_EQ(got, want) << (layer ? "layer_norm" : "rms_norm");
    EXPECT_EQ(x2, x1);
  }
}

}  // namespace
}  // namespace gb::engine

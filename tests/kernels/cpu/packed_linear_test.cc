// The packed linear kernels (kernels/cpu/packed/) against their scalar references,
// for every codec that has one, on seeded N(0, 1) weights and activations:
//  - f32 activations: the AVX2 kernel of each codec equals the reference dot
//    product (W's row through dequantize_row, f64 sums) within the codec's named
//    tolerance, for 1 to 17 activation rows (every register tile and its tails),
//    with a bias, and on a slice of the output features;
//  - q8 activations: the AVX2 kernel equals the scalar integer reference, and the
//    q8 mode stays within a named budget of the exact f32 result (how far 8-bit
//    activations move a layer's output);
//  - the dispatcher runs the AVX2 kernel for each codec (not the dequantizing
//    fallback), and the activation quantizer keeps |x - d q| <= d / 2 with exact
//    block sums.
// On a CPU without AVX2+FMA+F16C the AVX2 cases skip and say so.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/packed/packed_kernels.h"
#include "kernels/quantize/quantize_matrix.h"

namespace gb::kernels::cpu {
namespace {

// |fast - reference| <= tolerance * (|W_n| |x_m|) (the size of the dot product's
// terms; Cauchy-Schwarz), per codec. f32 accumulation in another order than the
// reference's f64 gives about 1e-7 of that; the budgets leave 10x or more.
constexpr double kTolF16 = 2e-6;
constexpr double kTolBf16 = 2e-6;
constexpr double kTolInt8 = 2e-6;
constexpr double kTolFp8 = 2e-6;
constexpr double kTolInt4 = 2e-6;
constexpr double kTolNf4 = 2e-6;
constexpr double kTolFp4 = 2e-6;
// q8 kernels against the integer reference: the same integer sums per block, float
// accumulation in another order.
constexpr double kTolQ8Kernel = 1e-6;
// The q8 mode against exact f32 activations: the relative RMS error of a layer's
// output on N(0, 1) data (measured: 0.4 to 0.6% with 32-element activation blocks,
// 0.6 to 0.8% with q8_K's 256-element ones).
constexpr double kMaxQ8ModeRelErr = 0.015;

std::vector<float> normal(int64_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(g);
  return v;
}

QuantSpec spec(WeightCodec c, ScaleLayout l = ScaleLayout::kNone, int64_t g = 0, bool pt = false, bool dq = false) {
  QuantSpec q;
  q.codec = c;
  q.layout = l;
  q.group = g;
  q.per_tensor = pt;
  q.double_quant = dq;
  return q;
}

struct Case {
  std::string name;
  QuantSpec spec;
  double tol;
};

std::vector<Case> f32_cases() {
  return {
      {"f16", spec(WeightCodec::kF16), kTolF16},
      {"bf16", spec(WeightCodec::kBF16), kTolBf16},
      {"int8_row", spec(WeightCodec::kInt8, ScaleLayout::kRow), kTolInt8},
      {"int8_tensor", spec(WeightCodec::kInt8, ScaleLayout::kRow, 0, true), kTolInt8},
      {"int8_g32", spec(WeightCodec::kInt8, ScaleLayout::kGroup, 32), kTolInt8},
      {"int8_g128", spec(WeightCodec::kInt8, ScaleLayout::kGroup, 128), kTolInt8},
      {"fp8_row", spec(WeightCodec::kFp8, ScaleLayout::kRow), kTolFp8},
      {"fp8_g64", spec(WeightCodec::kFp8, ScaleLayout::kGroup, 64), kTolFp8},
      {"int4_g32", spec(WeightCodec::kInt4, ScaleLayout::kGroup, 32), kTolInt4},
      {"int4_g128", spec(WeightCodec::kInt4, ScaleLayout::kGroup, 128), kTolInt4},
      {"nf4", spec(WeightCodec::kNf4, ScaleLayout::kNone, 64), kTolNf4},
      {"nf4_dq", spec(WeightCodec::kNf4, ScaleLayout::kNone, 64, false, true), kTolNf4},
      {"fp4", spec(WeightCodec::kFp4, ScaleLayout::kNone, 64), kTolFp4},
  };
}

std::vector<Case> q8_cases() {
  return {
      {"q8_0", spec(WeightCodec::kQ8_0), kTolQ8Kernel}, {"q4_0", spec(WeightCodec::kQ4_0), kTolQ8Kernel},
      {"q4_1", spec(WeightCodec::kQ4_1), kTolQ8Kernel}, {"q5_0", spec(WeightCodec::kQ5_0), kTolQ8Kernel},
      {"q5_1", spec(WeightCodec::kQ5_1), kTolQ8Kernel}, {"q2_k", spec(WeightCodec::kQ2_K), kTolQ8Kernel},
      {"q3_k", spec(WeightCodec::kQ3_K), kTolQ8Kernel}, {"q4_k", spec(WeightCodec::kQ4_K), kTolQ8Kernel},
      {"q5_k", spec(WeightCodec::kQ5_K), kTolQ8Kernel}, {"q6_k", spec(WeightCodec::kQ6_K), kTolQ8Kernel},
  };
}

constexpr int64_t kOut = 37, kIn = 512;  // an odd number of output features: every tile's tail

// |W_n| |x_m| for the tolerance.
double term_scale(const PackedMatrix& W, int64_t n, const float* x) {
  std::vector<float> w(static_cast<size_t>(W.cols));
  dequantize_row(W, n, w.data());
  double ww = 0, xx = 0;
  for (int64_t k = 0; k < W.cols; ++k) {
    ww += double{w[static_cast<size_t>(k)]} * w[static_cast<size_t>(k)];
    xx += double{x[k]} * x[k];
  }
  return std::sqrt(ww * xx);
}

class F32Activations : public ::testing::TestWithParam<Case> {};

TEST_P(F32Activations, Avx2KernelMatchesReferenceDot) {
  if (!has_avx2_fma_f16c()) GTEST_SKIP() << "this CPU lacks AVX2+FMA+F16C: only the reference path runs here";
  const Case& c = GetParam();
  const std::vector<float> w = normal(kOut * kIn, 11);
  Result<QuantizedMatrix> q = quantize_matrix(c.spec, w.data(), kOut, kIn, c.name);
  ASSERT_TRUE(q.ok()) << q.message();
  const PackedMatrix W = q->view();
  EXPECT_EQ(linear_kernel_name(W, ActivationMode::kF32), std::string(codec_name(W.codec)) + "-avx2");
  const std::vector<float> bias = normal(kOut, 12);
  for (int64_t rows : {1, 2, 3, 4, 5, 17}) {
    const std::vector<float> x = normal(rows * kIn, 13 + static_cast<uint64_t>(rows));
    // A slice of the features, as one thread of the backend computes it.
    const int64_t n0 = 3, n1 = kOut - 2;
    std::vector<float> y(static_cast<size_t>(rows * kOut), -7.0f);
    linear_range(x.data(), rows, W, bias.data(), n0, n1, y.data(), kOut);
    for (int64_t m = 0; m < rows; ++m)
      for (int64_t n = 0; n < kOut; ++n) {
        const float got = y[static_cast<size_t>(m * kOut + n)];
        if (n < n0 || n >= n1) {
          ASSERT_EQ(got, -7.0f) << c.name << ": wrote outside its slice at " << m << "," << n;
          continue;
        }
        const double want = reference_dot_f32(W, n, x.data() + m * kIn) + bias[static_cast<size_t>(n)];
        const double tol = c.tol * term_scale(W, n, x.data() + m * kIn);
        ASSERT_NEAR(got, want, tol) << c.name << " rows=" << rows << " m=" << m << " n=" << n;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryCodec, F32Activations, ::testing::ValuesIn(f32_cases()),
                         [](const auto& i) { return i.param.name; });

class Q8Activations : public ::testing::TestWithParam<Case> {};

TEST_P(Q8Activations, Avx2KernelMatchesIntegerReferenceAndStaysNearF32) {
  const Case& c = GetParam();
  const std::vector<float> w = normal(kOut * kIn, 21);
  Result<QuantizedMatrix> q = quantize_matrix(c.spec, w.data(), kOut, kIn, c.name);
  ASSERT_TRUE(q.ok()) << q.message();
  const PackedMatrix W = q->view();
  const bool avx2 = has_avx2_fma_f16c();
  EXPECT_EQ(linear_kernel_name(W, ActivationMode::kQ8),
            std::string(codec_name(W.codec)) + (avx2 ? "-q8-avx2" : "-q8-scalar"));
  const std::vector<float> bias = normal(kOut, 22);
  for (int64_t rows : {1, 2, 3, 4, 5, 17}) {
    const std::vector<float> x = normal(rows * kIn, 23 + static_cast<uint64_t>(rows));
    QuantizedActivations xq;
    xq.reset(x.data(), rows, kIn);
    xq.prepare(W.codec);
    std::vector<float> fast(static_cast<size_t>(rows * kOut)), ref(fast.size()), exact(fast.size());
    linear_range(x.data(), rows, W, bias.data(), 0, kOut, fast.data(), kOut, &xq);
    linear_q8_reference(xq, W, bias.data(), 0, kOut, ref.data(), kOut);
    linear_range(x.data(), rows, W, bias.data(), 0, kOut, exact.data(), kOut);  // f32 activations
    double num = 0, den = 0;
    for (int64_t m = 0; m < rows; ++m)
      for (int64_t n = 0; n < kOut; ++n) {
        const size_t i = static_cast<size_t>(m * kOut + n);
        ASSERT_NEAR(fast[i], ref[i], c.tol * term_scale(W, n, x.data() + m * kIn))
            << c.name << " rows=" << rows << " m=" << m << " n=" << n;
        const double e = double{exact[i]} - bias[static_cast<size_t>(n)];
        const double d = double{ref[i]} - exact[i];
        num += d * d;
        den += e * e;
      }
    const double rel = std::sqrt(num / den);
    EXPECT_LT(rel, kMaxQ8ModeRelErr) << c.name << " rows=" << rows;
    EXPECT_GT(rel, 0.0) << c.name << ": 8-bit activations that change nothing were not quantized";
  }
}

INSTANTIATE_TEST_SUITE_P(EveryQ8Codec, Q8Activations, ::testing::ValuesIn(q8_cases()),
                         [](const auto& i) { return i.param.name; });

TEST(Q8Activations, CodecsWithoutAQ8KernelReadF32) {
  const std::vector<float> w = normal(8 * 256, 31);
  Result<QuantizedMatrix> q = quantize_matrix(spec(WeightCodec::kInt8, ScaleLayout::kRow), w.data(), 8, 256, "int8");
  ASSERT_TRUE(q.ok()) << q.message();
  EXPECT_EQ(q8_activation_block(WeightCodec::kInt8), 0);
  EXPECT_EQ(linear_kernel_name(q->view(), ActivationMode::kQ8), has_avx2_fma_f16c() ? "int8-avx2" : "int8-dequant");
}

TEST(ActivationQuantizer, RoundsWithinHalfAStepAndSumsExactly) {
  constexpr int64_t rows = 3, cols = 512;
  std::vector<float> x = normal(rows * cols, 41);
  for (int k = 0; k < 32; ++k) x[static_cast<size_t>(64 + k)] = 0.0f;  // an all-zero block: d = 0
  std::vector<ActQ8_0> a;
  std::vector<ActQ8_K> b;
  quantize_activations_q8_0(x.data(), rows, cols, &a);
  quantize_activations_q8_K(x.data(), rows, cols, &b);
  ASSERT_EQ(a.size(), static_cast<size_t>(rows * cols / 32));
  ASSERT_EQ(b.size(), static_cast<size_t>(rows * cols / 256));
  EXPECT_EQ(a[2].d, 0.0f);
  for (int64_t i = 0; i < rows * cols; ++i) {
    const ActQ8_0& qa = a[static_cast<size_t>(i / 32)];
    const ActQ8_K& qb = b[static_cast<size_t>(i / 256)];
    EXPECT_LE(std::fabs(x[static_cast<size_t>(i)] - qa.d * qa.qs[i % 32]), qa.d / 2 * 1.0001f) << i;
    EXPECT_LE(std::fabs(x[static_cast<size_t>(i)] - qb.d * qb.qs[i % 256]), qb.d / 2 * 1.0001f) << i;
  }
  for (const ActQ8_0& qa : a) {
    int s = 0;
    for (int8_t v : qa.qs) s += v;
    EXPECT_FLOAT_EQ(qa.s, qa.d * static_cast<float>(s));
  }
  for (const ActQ8_K& qb : b)
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int k = 0; k < 16; ++k) s += qb.qs[16 * j + k];
      EXPECT_EQ(qb.bsums[j], s);
    }
}

}  // namespace
}  // namespace gb::kernels::cpu

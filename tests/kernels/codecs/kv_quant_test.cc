// The packed KV slot (kernels/codecs/kv_quant.h): its exact size per element, the
// round-trip error of each quantized element within a named budget, the fused dot
// product and value accumulation equal to the same products over the decoded head,
// and int8-calib's static scales (clamping outside the calibrated range).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/codecs/kv_quant.h"

namespace gb::kernels {
namespace {

// Round-trip budgets. Asymmetric int: in quantization steps s = (max - min) / levels
// of the group: half a step of rounding (the f16 scale is rounded up, by at most
// 2^-10 of itself).
constexpr double kInt8MaxErrSteps = 0.5;
constexpr double kInt4MaxErrSteps = 0.5;
// fp8 e4m3fn: 3 mantissa bits, so half an ulp is 1/16 of the value; below the
// normal range (2^-6 of the scale unit) half the subnormal step 2^-9.
constexpr double kFp8MaxRelErr = 1.0 / 16;
constexpr double kFp8SubnormalHalfStep = 0.5 * 1.0 / 512;
// Fused products against the same products over the decoded head (f32 rounding only).
constexpr double kFusedRelErr = 1e-5;

std::vector<float> normal(size_t n, uint32_t seed, float scale = 1.0f, float offset = 0.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = offset + scale * d(g);
  return v;
}

constexpr KvElement kQuantized[] = {KvElement::kInt8, KvElement::kFp8, KvElement::kInt4, KvElement::kInt4G32};

TEST(KvSlotLayout, BytesPerSlotAreCodesAndScales) {
  // 2 KV heads of 64: codes, and per group an f16 scale (+ an f16 zero point).
  EXPECT_EQ((KvSlotLayout{KvElement::kF32, 2, 64}.slot_bytes()), 512u);
  EXPECT_EQ((KvSlotLayout{KvElement::kF16, 2, 64}.slot_bytes()), 256u);
  EXPECT_EQ((KvSlotLayout{KvElement::kBF16, 2, 64}.slot_bytes()), 256u);
  EXPECT_EQ((KvSlotLayout{KvElement::kInt8, 2, 64}.slot_bytes()), 128u + 2 * 4);
  EXPECT_EQ((KvSlotLayout{KvElement::kFp8, 2, 64}.slot_bytes()), 128u + 2 * 2);
  EXPECT_EQ((KvSlotLayout{KvElement::kInt4, 2, 64}.slot_bytes()), 64u + 2 * 4);
  EXPECT_EQ((KvSlotLayout{KvElement::kInt4G32, 2, 64}.slot_bytes()), 64u + 2 * 2 * 4);
  EXPECT_EQ((KvSlotLayout{KvElement::kInt8Calib, 2, 64}.slot_bytes()), 128u);  // scales per layer, not per token
  // A head of 40 in groups of 32: a group of 32 and one of 8.
  const KvSlotLayout g{KvElement::kInt4G32, 1, 40};
  EXPECT_EQ(g.groups_per_head(), 2);
  EXPECT_EQ(g.slot_bytes(), 20u + 2 * 4);
  // Heads shorter than 32: one group per head, as int4.
  EXPECT_EQ((KvSlotLayout{KvElement::kInt4G32, 2, 16}.slot_bytes()), (KvSlotLayout{KvElement::kInt4, 2, 16}.slot_bytes()));
}

// Max |x - decoded| of each group against the element's budget.
void expect_within_budget(KvElement e, int64_t head_dim, float scale, float offset, uint32_t seed) {
  const int64_t heads = 3;
  const KvSlotLayout L{e, heads, head_dim};
  const std::vector<float> x = normal(static_cast<size_t>(heads * head_dim), seed, scale, offset);
  std::vector<uint8_t> slot(L.slot_bytes());
  for (int64_t h = 0; h < heads; ++h) kv_quantize_head(L, x.data() + h * head_dim, h, nullptr, slot.data());
  std::vector<float> y(static_cast<size_t>(head_dim));
  double worst = 0;
  for (int64_t h = 0; h < heads; ++h) {
    kv_dequantize_head(L, slot.data(), h, nullptr, y.data());
    for (int64_t g = 0; g < L.groups_per_head(); ++g) {
      const int64_t j0 = g * L.group(), j1 = std::min(j0 + L.group(), head_dim);
      const float* xg = x.data() + h * head_dim;
      const auto [mn, mx] = std::minmax_element(xg + j0, xg + j1);
      const float amax = std::max(std::fabs(*mn), std::fabs(*mx));
      for (int64_t j = j0; j < j1; ++j) {
        const double err = std::fabs(double{xg[j]} - y[static_cast<size_t>(j)]);
        double budget;
        if (e == KvElement::kFp8) {
          budget = kFp8MaxRelErr * std::fabs(xg[j]) + kFp8SubnormalHalfStep * amax / 448 * 1.001;
        } else {
          // Reference 002's step, widened only by the f16 rounding of the zero point.
          const double levels = e == KvElement::kInt8 ? 255 : 15;
          const double mid = 0.5 * (double{*mn} + *mx);
          const double zh = f16_to_f32(f32_to_f16(static_cast<float>(mid)));
          const double step = ((double{*mx} - *mn) / 2 + std::fabs(zh - mid)) / (levels / 2);
          const KvGroupScale stored = kv_group_scale(L, slot.data(), h, g, nullptr);
          EXPECT_LE(stored.scale, step * (1 + 1.0 / 1024)) << "the stored step";
          budget = (e == KvElement::kInt8 ? kInt8MaxErrSteps : kInt4MaxErrSteps) * step * (1 + 1.0 / 1024) +
                   1e-6 * std::fabs(xg[j]);  // f32 arithmetic
        }
        EXPECT_LE(err, budget) << "element " << static_cast<int>(e) << " head " << h << " j " << j << " x " << xg[j];
        worst = std::max(worst, err / std::max(budget, 1e-30));
      }
    }
  }
  EXPECT_GT(worst, 0.05) << "the rounding is real";
}

TEST(KvQuant, RoundTripWithinBudgets) {
  for (KvElement e : kQuantized)
    for (int64_t hd : {64, 40, 12}) {
      expect_within_budget(e, hd, 1.0f, 0.0f, 1);
      expect_within_budget(e, hd, 0.01f, 0.0f, 2);   // small values (fp8 subnormals)
      expect_within_budget(e, hd, 30.0f, 5.0f, 3);   // large, off-centre
    }
  // A tight range far from 0: the f16 zero point moves, the scale still covers it.
  expect_within_budget(KvElement::kInt8, 64, 0.01f, 100.0f, 4);
  expect_within_budget(KvElement::kInt4, 64, 0.01f, 100.0f, 5);
}

TEST(KvQuant, ConstantAndZeroHeadsDecodeToTheirValue) {
  for (KvElement e : kQuantized) {
    const KvSlotLayout L{e, 1, 16};
    std::vector<uint8_t> slot(L.slot_bytes());
    std::vector<float> y(16);
    const std::vector<float> zeros(16, 0.0f), ones(16, 1.5f);
    kv_quantize_head(L, zeros.data(), 0, nullptr, slot.data());
    kv_dequantize_head(L, slot.data(), 0, nullptr, y.data());
    for (float v : y) EXPECT_EQ(v, 0.0f);
    kv_quantize_head(L, ones.data(), 0, nullptr, slot.data());
    kv_dequantize_head(L, slot.data(), 0, nullptr, y.data());
    for (float v : y) {
      if (e == KvElement::kFp8)
        EXPECT_NEAR(v, 1.5f, kFp8MaxRelErr * 1.5);  // scaled to the top code, rounded by the f16 scale
      else
        EXPECT_EQ(v, 1.5f) << static_cast<int>(e);  // the zero point, codes 0
    }
  }
}

TEST(KvQuant, FusedProductsEqualProductsOfTheDecodedHead) {
  for (KvElement e : {KvElement::kInt8, KvElement::kFp8, KvElement::kInt4, KvElement::kInt4G32, KvElement::kInt8Calib})
    for (int64_t hd : {64, 40, 12}) {
      const KvSlotLayout L{e, 2, hd};
      const std::vector<float> x = normal(static_cast<size_t>(2 * hd), 11, 2.0f, 0.5f);
      const std::vector<float> q = normal(static_cast<size_t>(hd), 12);
      const float calib[4] = {0.05f, 0.3f, 0.04f, -0.2f};
      std::vector<uint8_t> slot(L.slot_bytes());
      for (int64_t h = 0; h < 2; ++h) kv_quantize_head(L, x.data() + h * hd, h, calib, slot.data());
      for (int64_t h = 0; h < 2; ++h) {
        std::vector<float> y(static_cast<size_t>(hd));
        kv_dequantize_head(L, slot.data(), h, calib, y.data());
        double dot = 0, norm = 0;
        for (int64_t j = 0; j < hd; ++j) {
          dot += double{q[static_cast<size_t>(j)]} * y[static_cast<size_t>(j)];
          norm += std::fabs(double{q[static_cast<size_t>(j)]} * y[static_cast<size_t>(j)]);
        }
        EXPECT_NEAR(kv_dot_head(L, q.data(), slot.data(), h, calib), dot, kFusedRelErr * norm);
        std::vector<float> acc(static_cast<size_t>(hd), 1.0f);
        kv_axpy_head(L, 0.75f, slot.data(), h, calib, acc.data());
        for (int64_t j = 0; j < hd; ++j)
          EXPECT_NEAR(acc[static_cast<size_t>(j)], 1.0f + 0.75f * y[static_cast<size_t>(j)],
                      kFusedRelErr * (1 + std::fabs(y[static_cast<size_t>(j)])));
      }
    }
}

TEST(KvQuant, CalibratedScalesClampOutsideTheRange) {
  // Calibrated range [-1, 3]: zp 1, scale 4 / 255.
  const float calib[2] = {4.0f / 255, 1.0f};
  const KvSlotLayout L{KvElement::kInt8Calib, 1, 4};
  const float x[4] = {-1.0f, 3.0f, 10.0f, -7.0f};
  std::vector<uint8_t> slot(L.slot_bytes());
  kv_quantize_head(L, x, 0, calib, slot.data());
  float y[4];
  kv_dequantize_head(L, slot.data(), 0, calib, y);
  EXPECT_NEAR(y[0], -1.0f, 0.5 * 4.0 / 255 + 1e-6);
  EXPECT_NEAR(y[1], 3.0f, 0.5 * 4.0 / 255 + 1e-6);
  EXPECT_FLOAT_EQ(y[2], 1.0f + 127 * 4.0f / 255);   // clamped to the top code
  EXPECT_FLOAT_EQ(y[3], 1.0f - 128 * 4.0f / 255);  // and the bottom one
}

}  // namespace
}  // namespace gb::kernels

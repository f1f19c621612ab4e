// The f16/bf16 codecs (kernels/codecs/float16.h) and the KV elements built on them
// (kernels/codecs/kv_element.h), on the host; codecs_nvcc_check.cu compiles the same
// headers as device code.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/codecs/float16.h"
#include "kernels/codecs/kv_element.h"

namespace gb::kernels {
namespace {

TEST(Conversions, F16KnownValuesAndEveryValueRoundTrips) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // halfway to 65536: rounds to even = inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);                  // tie -> even (0)
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -26)), 0x0001);                  // 0.75 ulp -> 1
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);           // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);       // tie -> even (up)
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(INFINITY), 0x7c00);
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
}

TEST(Conversions, Bf16KnownValuesAndEveryValueRoundTrips) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f818000u)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f808001u)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x7f7fffffu)), 0x7f80);  // FLT_MAX rounds to inf
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f32_from_bits(0x7f800001u)))));  // no NaN -> inf
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bf16_to_f32(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), b) << std::hex << b;
  }
}

TEST(KvElement, StoresAndLoadsEveryElementRoundedToNearestEven) {
  const std::vector<float> values = {0.0f, -0.0f, 1.0f, -2.5f, 0.333333f, 65504.0f, 1e-8f, 3.0e38f};
  for (KvElement e : {KvElement::kF32, KvElement::kF16, KvElement::kBF16}) {
    std::vector<uint8_t> buf(values.size() * kv_element_size(e));
    for (size_t i = 0; i < values.size(); ++i) store_kv_element(buf.data(), e, static_cast<int64_t>(i), values[i]);
    for (size_t i = 0; i < values.size(); ++i) {
      const float want = e == KvElement::kF32   ? values[i]
                         : e == KvElement::kF16 ? f16_to_f32(f32_to_f16(values[i]))
                                                : bf16_to_f32(f32_to_bf16(values[i]));
      EXPECT_EQ(load_kv_element(buf.data(), e, static_cast<int64_t>(i)), want) << static_cast<int>(e) << " " << i;
    }
  }
  EXPECT_EQ(kv_element_size(KvElement::kF32), 4u);
  EXPECT_EQ(kv_element_size(KvElement::kF16), 2u);
  EXPECT_EQ(kv_element_size(KvElement::kBF16), 2u);
}

}  // namespace
}  // namespace gb::kernels

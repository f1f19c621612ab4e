// float8 e4m3fn (kernels/codecs/fp8.h): every code decodes to its value and encodes
// back to itself; encoding saturates and rounds to nearest even.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "kernels/codecs/fp8.h"

namespace gb::kernels {
namespace {

// The value of an e4m3fn code from its definition: (-1)^s 2^(e-7) (1 + m/8), or
// 2^-6 (m/8) for e = 0.
double e4m3_definition(uint8_t b) {
  const int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
  const double v = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1 + m / 8.0, e - 7);
  return s ? -v : v;
}

TEST(Fp8E4m3, EveryCodeDecodesToItsDefinitionAndRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    const uint8_t b = static_cast<uint8_t>(c);
    const float f = fp8_e4m3_to_f32(b);
    if ((b & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(f)) << c;
      continue;
    }
    EXPECT_EQ(static_cast<double>(f), e4m3_definition(b)) << c;
    if (b == 0x80) continue;  // -0 encodes back to -0
    EXPECT_EQ(f32_to_fp8_e4m3(f), b) << c;
  }
  EXPECT_EQ(f32_to_fp8_e4m3(-0.0f), 0x80);
}

TEST(Fp8E4m3, SaturatesAndRoundsToNearestEven) {
  EXPECT_EQ(fp8_e4m3_to_f32(f32_to_fp8_e4m3(1e6f)), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(f32_to_fp8_e4m3(-500.0f)), -448.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(f32_to_fp8_e4m3(INFINITY)), 448.0f);
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_f32(f32_to_fp8_e4m3(NAN))));
  // 1.0625 is halfway between 1 and 1.125: to even (1). 1.1875: to even (1.25).
  EXPECT_EQ(fp8_e4m3_to_f32(f32_to_fp8_e4m3(1.0625f)), 1.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(f32_to_fp8_e4m3(1.1875f)), 1.25f);
  // Subnormals: the step is 2^-9; half of it rounds to even (0), 0.75 of it up.
  EXPECT_EQ(fp8_e4m3_to_f32(f32_to_fp8_e4m3(std::ldexp(1.0f, -10))), 0.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(f32_to_fp8_e4m3(std::ldexp(3.0f, -11))), std::ldexp(1.0f, -9));
  // Every f32 between two neighbouring codes goes to the nearer one.
  for (int c = 1; c < 0x7e; ++c) {
    const float lo = fp8_e4m3_to_f32(static_cast<uint8_t>(c)), hi = fp8_e4m3_to_f32(static_cast<uint8_t>(c + 1));
    const float below = lo + (hi - lo) * 0.49f, above = lo + (hi - lo) * 0.51f;
    EXPECT_EQ(f32_to_fp8_e4m3(below), c) << c;
    EXPECT_EQ(f32_to_fp8_e4m3(above), c + 1) << c;
  }
}

}  // namespace
}  // namespace gb::kernels

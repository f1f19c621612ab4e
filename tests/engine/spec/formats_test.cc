// Weight and KV-cache format names: every row parses, bits are as documented, and
// bad names say what is accepted.
#include <gtest/gtest.h>

#include "engine/spec/formats.h"

namespace gb::engine {
namespace {

struct Bits {
  const char* name;
  double nominal;
  double effective;
};

TEST(WeightFormat, NominalAndEffectiveBits) {
  const Bits cases[] = {
      {"f32", 32, 32},
      {"f16", 16, 16},
      {"bf16", 16, 16},
      {"int8-tensor", 8, 8},
      {"int8-channel", 8, 8 + 32.0 / 4096},
      {"int8-g32", 8, 8.5},
      {"int8-g128", 8, 8.125},
      {"int8-g512", 8, 8.03125},
      {"fp8-tensor", 8, 8},
      {"fp8-g64", 8, 8.25},
      {"int4-g32", 4, 5},
      {"int4-g128", 4, 4.25},
      {"int4-g256", 4, 4.125},
      {"nf4-b64", 4, 4.5},
      {"fp4-b64", 4, 4.5},
      {"nf4-b64-dq", 4, 4 + 8.0 / 64 + 32.0 / (64 * 256)},
      {"fp4-b64-dq", 4, 4 + 8.0 / 64 + 32.0 / (64 * 256)},
      {"int8-llm", 8, 8 + 32.0 / 4096},
      {"q8_0", 8, 8.5},
      {"q4_0", 4, 4.5},
      {"q4_1", 4, 5.0},
      {"q5_0", 5, 5.5},
      {"q5_1", 5, 6.0},
      {"q4_k", 4, 4.5},
      {"q6_k", 6, 6.5625},
      {"w8a8-int8", 8, 8 + 32.0 / 4096},
      {"w8a8-fp8+smooth", 8, 8 + 32.0 / 4096},
      {"fake:int8-g128", 16, 16},
      {"fake:nf4-b64-dq", 16, 16},
      {"fake:w8a8-int8+smooth", 16, 16},
  };
  for (const auto& c : cases) {
    Result<WeightFormat> f = parse_weight_format(c.name);
    ASSERT_TRUE(f.ok()) << c.name << ": " << f.message();
    EXPECT_EQ(f->name, c.name);
    EXPECT_DOUBLE_EQ(f->nominal_bits, c.nominal) << c.name;
    EXPECT_DOUBLE_EQ(f->effective_bits, c.effective) << c.name;
  }
}

TEST(WeightFormat, Layouts) {
  EXPECT_EQ(parse_weight_format("int8-g64")->block_size, 64);
  EXPECT_EQ(parse_weight_format("int8-g64")->scale_layout, "group");
  EXPECT_EQ(parse_weight_format("int8-channel")->scale_layout, "row");
  EXPECT_EQ(parse_weight_format("int8-tensor")->scale_layout, "tensor");
  EXPECT_FALSE(parse_weight_format("int4-g128")->symmetric);
  EXPECT_TRUE(parse_weight_format("q4_0")->symmetric);
  EXPECT_FALSE(parse_weight_format("q4_1")->symmetric);
  EXPECT_EQ(parse_weight_format("q6_k")->block_size, 256);
  EXPECT_EQ(parse_weight_format("fake:int8-g256")->block_size, 256);  // the codec it imitates
}

TEST(WeightFormat, EveryListedNameParses) {
  const auto names = weight_format_names();
  EXPECT_EQ(names.size(), 41u);  // 40 rows and "fake:<format>"
  for (const auto& n : names) {
    if (n == "fake:<format>") continue;
    EXPECT_TRUE(parse_weight_format(n).ok()) << n;
    EXPECT_TRUE(parse_weight_format("fake:" + n).ok()) << n;
  }
}

TEST(WeightFormat, BadNames) {
  for (const char* bad : {"", "F16", "int8", "int8-g100", "int4-g512", "int4-channel", "nf4", "q7_k", "fake:",
                          "fake:fake:int8-g128", "fake:bogus", "f16 ", "w8a8"}) {
    Result<WeightFormat> f = parse_weight_format(bad);
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_NE(f.message().find("unknown weight format '" + std::string(bad) + "'"), std::string::npos)
        << f.message();
    EXPECT_NE(f.message().find("int8-g128"), std::string::npos) << "lists the known names: " << f.message();
  }
}

TEST(KvFormat, Elements) {
  const Bits cases[] = {
      // At head_dim 128: f16 scale and zero point per (token, head) = 32 bits per 128 elements;
      // fp8 an f16 scale only; int4-g32 per 32 elements; int8-calib's scales are per layer.
      {"f32", 32, 32},      {"f16", 16, 16},      {"bf16", 16, 16},   {"int8", 8, 8.25},
      {"fp8", 8, 8.125},    {"int4", 4, 4.25},    {"int4-g32", 4, 5}, {"int8-calib", 8, 8},
  };
  for (const auto& c : cases) {
    Result<KvFormat> f = parse_kv_format(c.name);
    ASSERT_TRUE(f.ok()) << c.name;
    EXPECT_EQ(f->element, c.name);
    EXPECT_DOUBLE_EQ(f->nominal_bits, c.nominal);
    EXPECT_DOUBLE_EQ(f->effective_bits, c.effective);
    EXPECT_FALSE(f->streaming());
  }
}

TEST(KvFormat, CodecsAndExactEffectiveBitsPerHeadDim) {
  const std::pair<const char*, kernels::KvElement> codecs[] = {
      {"f32", kernels::KvElement::kF32},        {"f16", kernels::KvElement::kF16},
      {"bf16", kernels::KvElement::kBF16},      {"int8", kernels::KvElement::kInt8},
      {"fp8", kernels::KvElement::kFp8},        {"int4", kernels::KvElement::kInt4},
      {"int4-g32", kernels::KvElement::kInt4G32}, {"int8-calib", kernels::KvElement::kInt8Calib}};
  for (auto [name, codec] : codecs) {
    Result<KvFormat> f = parse_kv_format(std::string(name) + "+sink4+win60");
    ASSERT_TRUE(f.ok()) << f.message();
    EXPECT_EQ(f->codec, codec) << name;
    EXPECT_FALSE(f->description.empty()) << name;
  }
  // head_dim 64: int8 carries 32 bits of scales per 64 elements; int4-g32 per 32; int4 with head_dim 40: 20
  // bytes of codes and 4 of scales.
  EXPECT_DOUBLE_EQ(kv_effective_bits(*parse_kv_format("int8"), 64), 8.5);
  EXPECT_DOUBLE_EQ(kv_effective_bits(*parse_kv_format("int4-g32"), 64), 5);
  EXPECT_DOUBLE_EQ(kv_effective_bits(*parse_kv_format("int4"), 40), 24.0 * 8 / 40);
  EXPECT_DOUBLE_EQ(kv_effective_bits(*parse_kv_format("f16"), 64), 16);
}

TEST(KvFormat, StreamingPolicy) {
  Result<KvFormat> f = parse_kv_format("f16+sink4+win256");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->name, "f16+sink4+win256");
  EXPECT_EQ(f->element, "f16");
  EXPECT_EQ(f->sink_tokens, 4);
  EXPECT_EQ(f->window_tokens, 256);
  EXPECT_TRUE(f->streaming());

  Result<KvFormat> g = parse_kv_format("int8+sink0+win1");
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_EQ(g->sink_tokens, 0);
  EXPECT_EQ(g->window_tokens, 1);
  EXPECT_DOUBLE_EQ(g->nominal_bits, 8);
}

TEST(KvFormat, BadNames) {
  for (const char* bad : {"", "int2", "F16", "q8_0", "+sink4+win256"}) {
    Result<KvFormat> f = parse_kv_format(bad);
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_NE(f.message().find("unknown KV format"), std::string::npos) << f.message();
    EXPECT_NE(f.message().find("int8"), std::string::npos) << f.message();
  }
  for (const char* bad : {"f16+sink4", "f16+win256", "f16+sink4+win0", "f16+sink-1+win8", "f16+sink4+win256+",
                          "f16+sink+win8", "f16+sink4+win8x", "f16+win8+sink4", "f16+sink99999999999999999999+win8"}) {
    Result<KvFormat> f = parse_kv_format(bad);
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_NE(f.message().find("bad KV cache policy"), std::string::npos) << f.message();
    EXPECT_NE(f.message().find("+sink{S}+win{W}"), std::string::npos) << f.message();
  }
}

}  // namespace
}  // namespace gb::engine

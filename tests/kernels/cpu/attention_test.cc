// Attention over a packed (quantized) KV cache (kernels/cpu/attention.h): the
// scalar kernel equals attention over the decoded f32 cache, the AVX2 kernel the
// scalar one, keys stored unrotated are rotated as rope_rotate_half does, and each
// format stays within its named tolerance of attention over the unquantized f32
// cache, in the order of the formats' precision.
// Also attention_range itself (f32 K and V) against an f64 recomputation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/codecs/kv_quant.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/rope.h"

namespace gb::kernels::cpu {
namespace {

// Fused kernels against attention over the decoded cache: f32 rounding only.
constexpr double kFusedTol = 2e-5;
// AVX2 against the scalar reference (sums in another order).
constexpr double kAvx2Tol = 2e-5;
// Against the unquantized f32 cache, max |out - ref| / max |ref| over N(0,1) keys,
// values and queries (head_dim 64, 48 slots).
// Measured on this case: int8 0.0076, int8-calib 0.013 (a static range of [-4, 4]),
// fp8 0.068, int4-g32 0.133, int4 0.166.
constexpr double kInt8AttnTol = 0.012;
constexpr double kInt8CalibAttnTol = 0.02;
constexpr double kFp8AttnTol = 0.1;
constexpr double kInt4G32AttnTol = 0.2;
constexpr double kInt4AttnTol = 0.25;

struct Case {
  int64_t heads = 4, kv_heads = 2, head_dim = 64, len = 48, rows = 3;
};

std::vector<float> normal(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(double{a[i]} - b[i]));
    den = std::max(den, std::fabs(double{b[i]}));
  }
  return num / den;
}

struct Packed {
  KvSlotLayout layout;
  std::vector<uint8_t> k, v;
  std::vector<float> k_calib, v_calib;
  std::vector<float> K, V;  // decoded, [len][kv_heads * head_dim]
  KvPackedPlanes planes() const {
    const size_t sb = layout.slot_bytes();
    return {layout, KvPlane::contiguous(const_cast<uint8_t*>(k.data()), sb),
            KvPlane::contiguous(const_cast<uint8_t*>(v.data()), sb), k_calib.empty() ? nullptr : k_calib.data(),
            v_calib.empty() ? nullptr : v_calib.data()};
  }
};

Packed pack(KvElement e, const Case& c, const std::vector<float>& K, const std::vector<float>& V) {
  Packed p;
  p.layout = {e, c.kv_heads, c.head_dim};
  const size_t sb = p.layout.slot_bytes();
  p.k.resize(sb * static_cast<size_t>(c.len));
  p.v.resize(sb * static_cast<size_t>(c.len));
  if (e == KvElement::kInt8Calib)
    for (int64_t h = 0; h < c.kv_heads; ++h) {  // N(0,1): a range of [-4, 4]
      for (auto* t : {&p.k_calib, &p.v_calib}) {
        t->push_back(8.0f / 255);
        t->push_back(0.0f);
      }
    }
  const int64_t w = c.kv_heads * c.head_dim;
  p.K.resize(K.size());
  p.V.resize(V.size());
  for (int64_t s = 0; s < c.len; ++s)
    for (int64_t h = 0; h < c.kv_heads; ++h) {
      uint8_t* ks = p.k.data() + static_cast<size_t>(s) * sb;
      uint8_t* vs = p.v.data() + static_cast<size_t>(s) * sb;
      const float* kc = p.k_calib.empty() ? nullptr : p.k_calib.data();
      const float* vc = p.v_calib.empty() ? nullptr : p.v_calib.data();
      kv_quantize_head(p.layout, K.data() + s * w + h * c.head_dim, h, kc, ks);
      kv_quantize_head(p.layout, V.data() + s * w + h * c.head_dim, h, vc, vs);
      kv_dequantize_head(p.layout, ks, h, kc, p.K.data() + s * w + h * c.head_dim);
      kv_dequantize_head(p.layout, vs, h, vc, p.V.data() + s * w + h * c.head_dim);
    }
  return p;
}

struct Inputs {
  std::vector<float> q, K, V;
  std::vector<int64_t> visible;
};

Inputs inputs(const Case& c, uint32_t seed) {
  Inputs in;
  in.q = normal(static_cast<size_t>(c.rows * c.heads * c.head_dim), seed);
  in.K = normal(static_cast<size_t>(c.len * c.kv_heads * c.head_dim), seed + 1);
  in.V = normal(static_cast<size_t>(c.len * c.kv_heads * c.head_dim), seed + 2);
  for (int64_t r = 0; r < c.rows; ++r) in.visible.push_back(c.len - (c.rows - 1 - r));  // causal rows
  return in;
}

std::vector<float> f32_attention(const Case& c, const Inputs& in, const std::vector<float>& K,
                                 const std::vector<float>& V) {
  std::vector<float> out(static_cast<size_t>(c.rows * c.heads * c.head_dim));
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  attention_range(in.q.data(), c.heads * c.head_dim, c.heads, c.kv_heads, c.head_dim, K.data(), V.data(), c.len,
                  in.visible.data(), scale, 0, c.rows * c.heads, out.data());
  return out;
}

std::vector<float> packed_attention(const Case& c, const Inputs& in, const Packed& p, KvIsa isa,
                                    const float* cs = nullptr, int64_t rot_dim = 0) {
  std::vector<float> out(static_cast<size_t>(c.rows * c.heads * c.head_dim));
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  // Two ranges, as two threads would run them.
  const int64_t items = c.rows * c.heads, mid = items / 2;
  attention_packed_range(in.q.data(), c.heads * c.head_dim, c.heads, p.planes(), cs, rot_dim, in.visible.data(),
                         scale, 0, mid, out.data(), isa);
  attention_packed_range(in.q.data(), c.heads * c.head_dim, c.heads, p.planes(), cs, rot_dim, in.visible.data(),
                         scale, mid, items, out.data(), isa);
  return out;
}

constexpr KvElement kAll[] = {KvElement::kInt8, KvElement::kFp8, KvElement::kInt4, KvElement::kInt4G32,
                              KvElement::kInt8Calib};

TEST(PackedAttention, ScalarEqualsAttentionOverTheDecodedCache) {
  for (int64_t hd : {64, 40, 12}) {
    Case c;
    c.head_dim = hd;
    const Inputs in = inputs(c, 3);
    for (KvElement e : kAll) {
      const Packed p = pack(e, c, in.K, in.V);
      EXPECT_LT(rel_err(packed_attention(c, in, p, KvIsa::kScalar), f32_attention(c, in, p.K, p.V)), kFusedTol)
          << static_cast<int>(e) << " head_dim " << hd;
    }
  }
}

TEST(PackedAttention, Avx2EqualsScalar) {
  if (!kv_avx2_supported()) GTEST_SKIP() << "this CPU lacks AVX2, FMA or F16C";
  for (int64_t hd : {64, 40, 12, 128}) {
    Case c;
    c.head_dim = hd;
    const Inputs in = inputs(c, 5);
    for (KvElement e : kAll) {
      const Packed p = pack(e, c, in.K, in.V);
      EXPECT_LT(rel_err(packed_attention(c, in, p, KvIsa::kAvx2), packed_attention(c, in, p, KvIsa::kScalar)),
                kAvx2Tol)
          << static_cast<int>(e) << " head_dim " << hd;
    }
  }
}

TEST(PackedAttention, UnrotatedKeysAreRotatedToTheirSlot) {
  Case c;
  const int64_t rot_dim = 32;  // partial rotary, as GPT-NeoX's
  std::vector<float> inv_freq(rot_dim / 2);
  for (int64_t i = 0; i < rot_dim / 2; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / rot_dim);
  std::vector<float> cs(static_cast<size_t>(c.len * rot_dim));
  kv_rope_table(c.len, rot_dim, inv_freq.data(), cs.data());
  const Inputs in = inputs(c, 7);
  for (KvElement e : kAll) {
    const Packed p = pack(e, c, in.K, in.V);
    std::vector<float> rotated = p.K;
    for (int64_t s = 0; s < c.len; ++s)
      for (int64_t h = 0; h < c.kv_heads; ++h)
        rope_rotate_half(&rotated[static_cast<size_t>((s * c.kv_heads + h) * c.head_dim)], s, rot_dim, inv_freq.data());
    const std::vector<float> want = f32_attention(c, in, rotated, p.V);
    for (KvIsa isa : {KvIsa::kScalar, KvIsa::kAvx2})
      EXPECT_LT(rel_err(packed_attention(c, in, p, isa, cs.data(), rot_dim), want), kFusedTol) << static_cast<int>(e);
  }
}

TEST(PackedAttention, EachFormatWithinItsToleranceOfTheF32Cache) {
  Case c;
  const Inputs in = inputs(c, 9);
  const std::vector<float> ref = f32_attention(c, in, in.K, in.V);
  auto err = [&](KvElement e) { return rel_err(packed_attention(c, in, pack(e, c, in.K, in.V), kv_best_isa()), ref); };
  const double int8 = err(KvElement::kInt8), fp8 = err(KvElement::kFp8), int4 = err(KvElement::kInt4),
               int4g32 = err(KvElement::kInt4G32), calib = err(KvElement::kInt8Calib);
  EXPECT_GT(int8, 0);
  EXPECT_LT(int8, kInt8AttnTol);
  EXPECT_LT(calib, kInt8CalibAttnTol);
  EXPECT_LT(fp8, kFp8AttnTol);
  EXPECT_LT(int4g32, kInt4G32AttnTol);
  EXPECT_LT(int4, kInt4AttnTol);
  // More bits, or scales over fewer elements, err less.
  EXPECT_LT(int8, fp8);
  EXPECT_LT(fp8, int4g32);
  EXPECT_LT(int4g32, int4);
  std::printf("attention rel. error vs f32: int8 %.5f int8-calib %.5f fp8 %.5f int4-g32 %.5f int4 %.5f\n", int8, calib,
              fp8, int4g32, int4);
}

}  // namespace
}  // namespace gb::kernels::cpu

namespace gb::kernels::cpu {
namespace {

// attention_range (f32 K and V) against a plain f64 recomputation, on shapes that
// take its every branch: GQA groups of 1, 4 and 6 (a run of heads cut by kRun = 8
// and by the item ranges), head_dim 64 and 20 (a vector tail), rows that see
// different numbers of slots, one that sees none, and item ranges that split a
// row's heads as threads do.
constexpr double kF32AttnTol = 1e-5;  // relative to the output's largest |value|

TEST(F32Attention, MatchesAnF64RecomputationOnEveryShape) {
  struct Shape {
    int64_t heads, kv_heads, head_dim, len;
  };
  for (const Shape& sh : {Shape{4, 4, 64, 37}, Shape{16, 4, 64, 50}, Shape{12, 2, 20, 9}, Shape{48, 1, 8, 5}}) {
    const int64_t rows = 4;
    const int64_t w = sh.kv_heads * sh.head_dim;
    const std::vector<float> q = normal(static_cast<size_t>(rows * sh.heads * sh.head_dim), 71);
    const std::vector<float> K = normal(static_cast<size_t>(sh.len * w), 72);
    const std::vector<float> V = normal(static_cast<size_t>(sh.len * w), 73);
    const std::vector<int64_t> visible = {sh.len, sh.len - 1, 1, 0};
    const float scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim));
    std::vector<double> want(static_cast<size_t>(rows * sh.heads * sh.head_dim), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t h = 0; h < sh.heads; ++h) {
        const int64_t kvh = h / (sh.heads / sh.kv_heads);
        const float* qh = q.data() + (r * sh.heads + h) * sh.head_dim;
        std::vector<double> p(static_cast<size_t>(visible[r]));
        double mx = -INFINITY, sum = 0;
        for (int64_t s = 0; s < visible[r]; ++s) {
          double d = 0;
          for (int64_t j = 0; j < sh.head_dim; ++j) d += double{qh[j]} * K[static_cast<size_t>(s * w + kvh * sh.head_dim + j)];
          p[static_cast<size_t>(s)] = d * scale;
          mx = std::max(mx, p[static_cast<size_t>(s)]);
        }
        for (double& x : p) sum += x = std::exp(x - mx);
        for (int64_t s = 0; s < visible[r]; ++s)
          for (int64_t j = 0; j < sh.head_dim; ++j)
            want[static_cast<size_t>((r * sh.heads + h) * sh.head_dim + j)] +=
                p[static_cast<size_t>(s)] / sum * V[static_cast<size_t>(s * w + kvh * sh.head_dim + j)];
      }
    const int64_t items = rows * sh.heads;
    for (int64_t split : {items, int64_t{3}, sh.heads + 5}) {
      std::vector<float> got(want.size(), -7.0f);
      for (int64_t i0 = 0; i0 < items; i0 += split)
        attention_range(q.data(), sh.heads * sh.head_dim, sh.heads, sh.kv_heads, sh.head_dim, K.data(), V.data(),
                        sh.len, visible.data(), scale, i0, std::min(items, i0 + split), got.data());
      double num = 0, den = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        num = std::max(num, std::fabs(got[i] - want[i]));
        den = std::max(den, std::fabs(want[i]));
      }
      EXPECT_LE(num / den, kF32AttnTol) << "heads " << sh.heads << " kv_heads " << sh.kv_heads << " head_dim "
                                        << sh.head_dim << " items split by " << split;
      for (size_t i = static_cast<size_t>(3 * sh.heads * sh.head_dim); i < got.size(); ++i)
        ASSERT_EQ(got[i], 0.0f) << "a row that sees no slot gets zeros";
    }
  }
}

}  // namespace
}  // namespace gb::kernels::cpu

// What of the CUDA attention kernels can be checked without a GPU:
//  - KvDecoder (kernels/cuda/attention/kv_decoder.h), the offset-precomputed slot
//    decoder the kernels use, gives the same pointers, groups, scales and values as
//    the codec's KvSlotLayout / kv_group_scale / kv_dequantize_head, bit for bit, for
//    every element and odd shapes (run on the host; the device runs the same code);
//  - attention_kernel_name and attention_workspace_bytes;
//  - invalid arguments are Errors that say what, with nothing launched;
//  - on a machine without a GPU a valid call is an Error value, not a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/codecs/kv_quant.h"
#include "kernels/cuda/attention/attention.h"
#include "kernels/cuda/attention/kv_decoder.h"
#include "kernels/cuda/attention/kv_store.h"
#include "tests/cuda/gpu_test_util.h"

namespace gb::kernels::cuda {
namespace {

constexpr KvElement kAll[] = {KvElement::kF32,  KvElement::kF16, KvElement::kBF16, KvElement::kInt8,
                              KvElement::kFp8,  KvElement::kInt4, KvElement::kInt4G32, KvElement::kInt8Calib};

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(CudaKvDecoder, MatchesTheCodecLayoutBitForBit) {
  std::mt19937 g(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (KvElement e : kAll)
    for (int64_t heads : {1, 3, 8})
      for (int64_t hd : {1, 2, 31, 32, 33, 64, 80, 128, 256}) {
        SCOPED_TRACE("element " + std::to_string(static_cast<int>(e)) + " heads " + std::to_string(heads) +
                     " head_dim " + std::to_string(hd));
        const KvSlotLayout L{e, heads, hd};
        const KvDecoder d = KvDecoder::of(L);
        ASSERT_EQ(d.slot_bytes, static_cast<int64_t>(L.slot_bytes()));
        std::vector<uint8_t> slot(L.slot_bytes());
        std::vector<float> calib(static_cast<size_t>(2 * heads));
        for (int64_t h = 0; h < heads; ++h) {
          calib[2 * h] = 0.02f + 0.001f * static_cast<float>(h);
          calib[2 * h + 1] = 0.1f * static_cast<float>(h) - 0.1f;
        }
        std::vector<float> x(static_cast<size_t>(heads * hd));
        for (auto& v : x) v = nd(g) + 0.3f;
        for (int64_t h = 0; h < heads; ++h) {
          if (kv_element_quantized(e))
            kv_quantize_head(L, x.data() + h * hd, h, calib.data(), slot.data());
          else
            for (int64_t j = 0; j < hd; ++j) store_kv_element(L.codes(slot.data(), h), e, j, x[h * hd + j]);
        }
        for (int64_t h = 0; h < heads; ++h) {
          const int32_t h32 = static_cast<int32_t>(h);
          ASSERT_EQ(d.codes(slot.data(), h32), L.codes(slot.data(), h));
          std::vector<float> ref(static_cast<size_t>(hd));
          if (kv_element_quantized(e)) {
            kv_dequantize_head(L, slot.data(), h, calib.data(), ref.data());
            for (int64_t gi = 0; gi < L.groups_per_head(); ++gi) {
              const int32_t g32 = static_cast<int32_t>(gi);
              ASSERT_EQ(d.meta(slot.data(), h32, g32), L.meta(slot.data(), h, gi));
              const KvGroupScale a = d.scale(slot.data(), h32, g32, calib.data());
              const KvGroupScale b = kv_group_scale(L, slot.data(), h, gi, calib.data());
              ASSERT_EQ(bits(a.scale), bits(b.scale));
              ASSERT_EQ(bits(a.zero), bits(b.zero));
            }
          } else {
            for (int64_t j = 0; j < hd; ++j) ref[j] = load_kv_element(L.codes(slot.data(), h), e, j);
          }
          for (int64_t j = 0; j < hd; ++j) {
            ASSERT_EQ(d.group_of(static_cast<int32_t>(j)), j / L.group()) << "j " << j;
            ASSERT_EQ(bits(d.value(slot.data(), h32, static_cast<int32_t>(j), calib.data())), bits(ref[j]))
                << "j " << j;
          }
        }
      }
}

TEST(CudaAttention, KernelNames) {
  KvCacheView c;
  c.element = KvElement::kInt4G32;
  EXPECT_EQ(attention_kernel_name(c, 1), "int4-g32-flash-decode-cuda");
  EXPECT_EQ(attention_kernel_name(c, 37), "int4-g32-flash-prefill-cuda");
  c.element = KvElement::kBF16;
  c.keys_unrotated = true;
  EXPECT_EQ(attention_kernel_name(c, 1), "bf16-flash-decode-unrotated-cuda");
  c.element = KvElement::kInt8Calib;
  c.keys_unrotated = false;
  EXPECT_EQ(attention_kernel_name(c, 2), "int8-calib-flash-prefill-cuda");
}

TEST(CudaAttention, WorkspaceBytes) {
  EXPECT_EQ(attention_workspace_bytes(0, 32, 128, 8192), 0u);
  EXPECT_EQ(attention_workspace_bytes(1, 0, 128, 8192), 0u);
  // One chunk for a one-slot cache: a partial acc of head_dim floats plus (max, sum)
  // per head.
  EXPECT_EQ(attention_workspace_bytes(1, 32, 128, 1), 32u * (128 + 2) * 4);
  EXPECT_EQ(attention_workspace_bytes(1, 32, 128, 0), 32u * (128 + 2) * 4);
  // Never decreasing with the length (a workspace for max_len serves every shorter
  // cache), bounded (the chunk count is capped), and the same for any n >= 1 (only a
  // one-row call uses it).
  size_t prev = 0;
  for (int64_t len = 1; len <= 40000; len += 97) {
    const size_t b = attention_workspace_bytes(1, 32, 128, len);
    EXPECT_GE(b, prev) << len;
    prev = b;
  }
  EXPECT_LE(attention_workspace_bytes(1, 32, 128, int64_t{1} << 30), size_t{16} << 20);
  EXPECT_EQ(attention_workspace_bytes(37, 32, 128, 4096), attention_workspace_bytes(1, 32, 128, 4096));
}

// A valid decode call's arguments on fake (never dereferenced) pointers.
struct FakeCall {
  float q[1], out[1];
  int64_t visible[1] = {1};
  alignas(16) uint8_t k[64], v[64], ws[1 << 16];
  KvCacheView cache;
  FakeCall() {
    cache.k = k;
    cache.v = v;
    cache.len = 1;
    cache.kv_heads = 2;
    cache.head_dim = 64;
    cache.element = KvElement::kInt8;
  }
  Status run(int64_t heads, int64_t kv_heads, int64_t head_dim, size_t ws_bytes = sizeof(ws)) {
    return attention(nullptr, q, 1, heads * head_dim, heads, kv_heads, head_dim, cache, visible, RopeTable{}, 0.125f,
                     out, ws, ws_bytes);
  }
};

void expect_error(const Status& s, const std::string& part) {
  ASSERT_FALSE(s.ok()) << "expected an error saying " << part;
  EXPECT_NE(s.message().find(part), std::string::npos) << s.message();
}

TEST(CudaAttention, InvalidArgumentsAreErrors) {
  FakeCall c;
  expect_error(c.run(6, 4, 64), "kv_heads");          // 6 heads over 4 kv heads
  expect_error(c.run(4, 2, 512), "head_dim 512");     // beyond kAttentionMaxHeadDim
  expect_error(c.run(4, 2, 32), "cache has");         // the call's head_dim is not the cache's
  expect_error(c.run(4, 2, 64, 8), "workspace");      // too small
  c.cache.element = KvElement::kInt8Calib;
  expect_error(c.run(4, 2, 64), "k_calib");
  c.cache.element = KvElement::kF16;
  c.cache.keys_unrotated = true;
  EXPECT_FALSE(attention(nullptr, c.q, 1, 128, 4, 2, 64, c.cache, c.visible, RopeTable{64, nullptr}, 1.0f, c.out,
                         c.ws, sizeof(c.ws))
                   .ok());
  expect_error(attention(nullptr, c.q, 1, 128, 4, 2, 64, c.cache, c.visible, RopeTable{63, c.q}, 1.0f, c.out, c.ws,
                         sizeof(c.ws)),
               "rot_dim 63");
  expect_error(attention(nullptr, c.q, -1, 128, 4, 2, 64, c.cache, c.visible, RopeTable{}, 1.0f, c.out, c.ws,
                         sizeof(c.ws)),
               "n = -1");
  EXPECT_TRUE(attention(nullptr, nullptr, 0, 0, 4, 2, 64, c.cache, nullptr, RopeTable{}, 1.0f, nullptr, nullptr, 0).ok())
      << "zero rows: nothing to do";

  KvCacheView kv = c.cache;
  kv.element = KvElement::kInt8;
  expect_error(kv_store(nullptr, c.q, c.q, 1, 128, 100, kv, 0), "kv_width 100");
  expect_error(kv_store(nullptr, c.q, c.q, 1, 128, 128, kv, -1), "slot -1");
  expect_error(kv_store(nullptr, c.q, c.q, -2, 128, 128, kv, 0), "n = -2");
  kv.element = KvElement::kInt8Calib;
  expect_error(kv_store(nullptr, c.q, c.q, 1, 128, 128, kv, 0), "k_calib");
  kv.element = KvElement::kF32;
  kv.k = c.k + 1;  // not float-aligned
  expect_error(kv_store(nullptr, c.q, c.q, 1, 128, 128, kv, 0), "aligned");
  EXPECT_TRUE(kv_store(nullptr, nullptr, nullptr, 0, 0, 0, kv, 0).ok()) << "zero rows: nothing to do";
}

// Every head_dim and GQA group the kernels take gets a launch plan within the 48 KiB
// of shared memory a block has without opting in (attention() refuses a plan beyond
// it with "shared memory"; here, without a device, a valid plan fails at the launch).
TEST(CudaAttention, EveryShapeIsPlannedWithinSharedMemory) {
  if (gb::testing::gpu_present()) GTEST_SKIP() << "a GPU is present: the fake pointers would be launched on";
  alignas(16) static uint8_t planes[2][1 << 12];
  float q[1] = {0}, out[1] = {0};
  int64_t visible[1] = {1};
  for (auto [heads, kv_heads] : {std::pair<int64_t, int64_t>{1, 1}, {4, 4}, {8, 2}, {6, 2}, {7, 1}, {32, 8},
                                 {32, 1}, {64, 1}})
    for (int64_t hd = 1; hd <= kAttentionMaxHeadDim; ++hd)
      for (int64_t n : {1, 37}) {
        KvCacheView c;
        c.k = planes[0];
        c.v = planes[1];
        c.len = 1;
        c.kv_heads = kv_heads;
        c.head_dim = hd;
        std::vector<uint8_t> ws(attention_workspace_bytes(n, heads, hd, c.len) + 16);
        const Status s = attention(nullptr, q, n, heads * hd, heads, kv_heads, hd, c, visible, RopeTable{}, 1.0f, out,
                                   ws.data() + (16 - reinterpret_cast<uintptr_t>(ws.data()) % 16) % 16,
                                   ws.size() - 16);
        ASSERT_FALSE(s.ok());
        ASSERT_EQ(s.message().find("shared memory"), std::string::npos)
            << s.message() << " (heads " << heads << "/" << kv_heads << ", head_dim " << hd << ", n " << n << ")";
        ASSERT_NE(s.message().find("launch failed"), std::string::npos) << s.message();
      }
}

TEST(CudaAttention, NoDeviceMeansErrorsNotCrashes) {
  if (gb::testing::gpu_present()) GTEST_SKIP() << "a GPU is present: this test is for machines without one";
  FakeCall c;
  const Status a = c.run(4, 2, 64);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.message().find("launch failed"), std::string::npos) << a.message();
  const Status s = kv_store(nullptr, c.q, c.q, 1, 128, 128, c.cache, 0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("launch failed"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace gb::kernels::cuda

// KV slots in and out on the CPU (kernels/cpu/kv_store.h): kv_load_rows widens
// every f16 and every bf16 bit pattern as load_kv_element does (its F16C / AVX2 path
// included, odd widths giving a scalar tail), and stores and loads address a paged
// plane slot by slot as they do a contiguous one.
#include "kernels/cpu/kv_store.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace gb::kernels::cpu {
namespace {
namespace kv_store_test {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(KvLoadRows, EveryHalfAndBfloatPatternWidensAsTheScalarDecoder) {
  constexpr int64_t kWidth = 37;  // 4 vectors of 8 and a tail of 5
  for (KvElement e : {KvElement::kF16, KvElement::kBF16}) {
    const int64_t slots = (65536 + kWidth - 1) / kWidth;
    std::vector<uint16_t> codes(static_cast<size_t>(slots * kWidth));
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint16_t>(i);
    const size_t sb = kWidth * sizeof(uint16_t);
    const KvPlane plane = KvPlane::contiguous(codes.data(), sb);
    std::vector<float> K(codes.size()), V(codes.size());
    kv_load_rows(plane, plane, e, 0, slots, kWidth, kWidth, 0, nullptr, K.data(), V.data());
    int checked = 0;
    for (size_t i = 0; i < codes.size(); ++i) {
      const float want = load_kv_element(codes.data(), e, static_cast<int64_t>(i));
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(K[i]) && std::isnan(V[i])) << "pattern " << codes[i];
      } else {
        ASSERT_EQ(bits(K[i]), bits(want)) << "pattern " << codes[i];
        ASSERT_EQ(bits(V[i]), bits(want)) << "pattern " << codes[i];
      }
      ++checked;
    }
    EXPECT_EQ(checked, slots * kWidth);
  }
}

TEST(KvStoreRows, PagedPlanesHoldWhatContiguousOnesHold) {
  constexpr int64_t kWidth = 12, kRows = 11;
  std::vector<float> rows(static_cast<size_t>(2 * kRows * kWidth));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = std::sin(0.37f * static_cast<float>(i)) * 3.0f;
  for (KvElement e : {KvElement::kF32, KvElement::kF16, KvElement::kBF16}) {
    const size_t sb = static_cast<size_t>(kWidth) * kv_element_size(e);
    // Contiguous: slots 0..15; paged: 4 pages of 4 slots, keys then values in each, in reverse order.
    std::vector<uint8_t> ck(16 * sb), cv(16 * sb);
    std::vector<std::vector<uint8_t>> pages(4, std::vector<uint8_t>(2 * 4 * sb));
    std::vector<uint8_t*> table = {pages[3].data(), pages[2].data(), pages[1].data(), pages[0].data()};
    KvPlane pk, pv;
    pk.pages = pv.pages = table.data();
    pk.page_shift = pv.page_shift = 2;
    pk.slot_bytes = pv.slot_bytes = sb;
    pv.offset = static_cast<int64_t>(4 * sb);
    const KvPlane contiguous_k = KvPlane::contiguous(ck.data(), sb), contiguous_v = KvPlane::contiguous(cv.data(), sb);
    // Rows at slots 3..13: across every page.
    kv_store_rows(rows.data(), rows.data() + kWidth, kRows, 2 * kWidth, kWidth, pk, pv, e, 3);
    kv_store_rows(rows.data(), rows.data() + kWidth, kRows, 2 * kWidth, kWidth, contiguous_k, contiguous_v, e, 3);
    std::vector<float> K1(16 * kWidth), V1(K1.size()), K2(K1.size()), V2(K1.size());
    kv_load_rows(pk, pv, e, 3, 14, kWidth, 4, 0, nullptr, K1.data(), V1.data());
    kv_load_rows(contiguous_k, contiguous_v, e, 3, 14, kWidth, 4, 0, nullptr, K2.data(), V2.data());
    for (int64_t i = 3 * kWidth; i < 14 * kWidth; ++i) {
      ASSERT_EQ(K1[i], K2[i]) << i;
      ASSERT_EQ(V1[i], V2[i]) << i;
      const int64_t r = i / kWidth - 3, j = i % kWidth;
      const float k = rows[static_cast<size_t>(r * 2 * kWidth + j)];
      EXPECT_NEAR(K1[i], k, e == KvElement::kF32 ? 0.0f : std::abs(k) * (e == KvElement::kF16 ? 1e-3f : 8e-3f)) << i;
    }
    // The slot of row 0 is page 0's last slot (slot 3), in the table's first entry.
    float first;
    if (e == KvElement::kF32) {
      std::memcpy(&first, pages[3].data() + 3 * sb, 4);
      EXPECT_EQ(first, rows[0]);
    }
  }
}

}  // namespace kv_store_test
}  // namespace
}  // namespace gb::kernels::cpu

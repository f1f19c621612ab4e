// GGUF q8_0, q4_0 and q4_K blocks of 8 consecutive rows interleaved ("x8"): the layout
// the CPU backend's q8 kernels read (kernels/cpu/packed/linear_q8_0.cc), made in
// place when a linear layer's matrix is put in its memory (the same bytes,
// rearranged). The idea is llama.cpp's repacked q4_0x8: one vector load then holds
// four quants of each of the 8 rows, so that one activation dword broadcast against
// it gives 8 rows' products at once, and the 8 rows' scales sit side by side
// (one vector conversion, no scalar f16 per block and row).
//
// Rows [8g, 8g + 8) are row group g, at codes + 8 g row_bytes (where its 8 rows
// were); block b of the group, at + b * sizeof(x8 block), holds block b of each of
// its rows:
//   d[i]             block b's f16 scale of row 8g + i
//   q8_0: qs[32 c + 4 i + t] = q[4 c + t] of row 8g + i      (c < 8, t < 4)
//   q4_0: qs[32 c + 4 i + t] = byte 4 c + t of row 8g + i's qs (c < 4, t < 4): the
//         low nibbles are elements 4c..4c+3, the high ones elements 16+4c..16+4c+3
//   q4_K: d[i], dmin[i]; scales[w][i] = 32-bit word w (bytes 4w..4w+3) of row
//         8g + i's 12 scale bytes; qs[256 t + 32 c + 4 i + u] = byte 32 t + 4 c + u
//         of row 8g + i's qs (t < 4, c < 8, u < 4): the low nibbles are elements
//         4c..4c+3 of sub-block 2t, the high ones those of sub-block 2t + 1
// Rows past the last whole group stay row-major where they were. For the host and
// the device alike (header-only C++17), though only the CPU backend interleaves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/codecs/ggml_blocks.h"
#include "kernels/codecs/host_device.h"

namespace gb::kernels {

inline constexpr int kInterleaveRows = 8;

struct BlockQ8_0x8 {
  uint16_t d[8];
  int8_t qs[8 * kQK];
};
static_assert(sizeof(BlockQ8_0x8) == 8 * sizeof(BlockQ8_0), "q8_0x8 block: 8 q8_0 blocks");

struct BlockQ4_0x8 {
  uint16_t d[8];
  uint8_t qs[8 * kQK / 2];
};
static_assert(sizeof(BlockQ4_0x8) == 8 * sizeof(BlockQ4_0), "q4_0x8 block: 8 q4_0 blocks");

struct BlockQ4_Kx8 {
  uint16_t d[8];
  uint16_t dmin[8];
  uint32_t scales[3][8];
  uint8_t qs[8 * kQK_K / 2];
};
static_assert(sizeof(BlockQ4_Kx8) == 8 * sizeof(BlockQ4_K), "q4_Kx8 block: 8 q4_K blocks");

// The block layouts with an x8 form, by their plain block's bytes: q8_0 (34), q4_0
// (18), q4_K (144).
GB_HOST_DEVICE constexpr bool x8_block_bytes_supported(int block_bytes) {
  return block_bytes == 34 || block_bytes == 18 || block_bytes == 144;
}

// Plain block byte k of row `lane` <-> its byte in the x8 block (the layout above):
// each plain block is a header of f16 fields (d; q4_K also dmin and 12 scale bytes)
// then its quants.
GB_HOST_DEVICE inline int x8_offset(int block_bytes, int lane, int k) {
  if (block_bytes == 144) {
    if (k < 4) return 16 * (k / 2) + 2 * lane + k % 2;        // d, dmin
    if (k < 16) return 32 + 32 * ((k - 4) / 4) + 4 * lane + (k - 4) % 4;  // scale words
    const int q = k - 16;                                        // qs byte 32 t + 4 c + u
    return 128 + 256 * (q / 32) + 32 * ((q % 32) / 4) + 4 * lane + q % 4;
  }
  if (k < 2) return 2 * lane + k;
  const int q = k - 2;
  return 16 + 32 * (q / 4) + 4 * lane + q % 4;
}

// Row `lane` of an x8 block back in its plain block layout, into out[block_bytes].
GB_HOST_DEVICE inline void x8_extract_block(const uint8_t* x8, int block_bytes, int lane, uint8_t* out) {
  for (int k = 0; k < block_bytes; ++k) out[k] = x8[x8_offset(block_bytes, lane, k)];
}

// The 8 plain blocks at rows[i] (i < 8) as one x8 block into out[8 * block_bytes].
GB_HOST_DEVICE inline void x8_pack_block(const uint8_t* const rows[8], int block_bytes, uint8_t* out) {
  for (int i = 0; i < 8; ++i)
    for (int k = 0; k < block_bytes; ++k) out[x8_offset(block_bytes, i, k)] = rows[i][k];
}

// Rearranges `rows` rows of `blocks` plain blocks each (codes, row-major) into the
// x8 layout in place; the rows past the last whole group are left as they are.
inline void x8_interleave_matrix(uint8_t* codes, int64_t rows, int64_t blocks, int block_bytes) {
  const size_t row_bytes = static_cast<size_t>(blocks) * static_cast<size_t>(block_bytes);
  std::vector<uint8_t> group(8 * row_bytes);
  for (int64_t g = 0; g + 8 <= rows; g += 8) {
    uint8_t* base = codes + static_cast<size_t>(g) * row_bytes;
    std::memcpy(group.data(), base, group.size());
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* src[8];
      for (int i = 0; i < 8; ++i) src[i] = group.data() + i * row_bytes + static_cast<size_t>(b) * block_bytes;
      x8_pack_block(src, block_bytes, base + static_cast<size_t>(b) * 8 * block_bytes);
    }
  }
}

}  // namespace gb::kernels

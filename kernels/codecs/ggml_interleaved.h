// GGUF q8_0 and q4_0 blocks of 8 consecutive rows interleaved ("x8"): the layout
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

// Bytes of one row's quants in a block (q8_0 32, q4_0 16); 0 for a codec that has
// no x8 layout. Every such block is an f16 d followed by these bytes.
GB_HOST_DEVICE constexpr int x8_quant_bytes(int block_bytes) { return block_bytes - 2; }

// Row `lane` of an x8 block (q8_0x8 or q4_0x8 by block_bytes, 34 or 18) back in
// its plain block layout, into out[block_bytes].
GB_HOST_DEVICE inline void x8_extract_block(const uint8_t* x8, int block_bytes, int lane, uint8_t* out) {
  const int qb = x8_quant_bytes(block_bytes);
  out[0] = x8[2 * lane];
  out[1] = x8[2 * lane + 1];
  const uint8_t* qs = x8 + 16;
  for (int c = 0; c < qb / 4; ++c)
    for (int t = 0; t < 4; ++t) out[2 + 4 * c + t] = qs[32 * c + 4 * lane + t];
}

// The 8 plain blocks at rows[i] (i < 8) as one x8 block into out[8 * block_bytes].
GB_HOST_DEVICE inline void x8_pack_block(const uint8_t* const rows[8], int block_bytes, uint8_t* out) {
  const int qb = x8_quant_bytes(block_bytes);
  uint8_t* qs = out + 16;
  for (int i = 0; i < 8; ++i) {
    out[2 * i] = rows[i][0];
    out[2 * i + 1] = rows[i][1];
    for (int c = 0; c < qb / 4; ++c)
      for (int t = 0; t < 4; ++t) qs[32 * c + 4 * i + t] = rows[i][2 + 4 * c + t];
  }
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

// The tuned decode GEMV's unit of work (linear_gemv.cu): piece p of row r of W is the
// kElems consecutive elements [p kElems, (p + 1) kElems), decoded in order into
// registers from wide loads of the packed bytes. One Piece<codec> per tuned codec:
//
//   codec          kElems  loads per piece                  needs (gemv_piece_fits)
//   f32              4     one 16-byte load                 16-byte rows
//   f16, bf16        8     one 16-byte load                 16-byte rows
//   int8, fp8       16     one 16-byte load + its scale     16-byte rows; group % 16
//   int4            32     one 16-byte load + scale, zero   16-byte rows; group % 32
//   nf4, fp4        32     one 16-byte load + absmax        16-byte rows; group % 32
//   q8_0, q4_0      32     the block as 2-byte loads        (blocks are 2-byte aligned)
//   q4_K            32     header + 32 code bytes (16-byte) 16-byte rows (always)
//   q6_K            32     2-byte loads of its fields       -
//
// q8_0 and q4_0 go through their shared ggml_blocks.h dequantizers on a register copy
// of the block; the others repeat dequantize_row's arithmetic (packed_matrix.h,
// ggml_blocks.h) element for element on one piece, with the shared scale helpers
// (int_scale, bnb_absmax, ggml_scale_min_k4) and element decoders. Host and device
// alike: the host test (tests/cuda/matmul/weight_units_test.cc) checks every piece
// against dequantize_row bit for bit. Not here: the kernel, or any other codec
// (those take the generic kernel, weight_units.h).
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/codecs/host_device.h"
#include "kernels/codecs/packed_matrix.h"

namespace gb::kernels::cuda {

// 16 bytes at p (16-byte aligned) as four little-endian words.
GB_HOST_DEVICE inline void load16(const uint8_t* p, uint32_t* w) {
#if defined(__CUDA_ARCH__)
  const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
  w[0] = v.x;
  w[1] = v.y;
  w[2] = v.z;
  w[3] = v.w;
#else
  std::memcpy(w, p, 16);
#endif
}

// The 2 bytes at p (2-byte aligned), little-endian.
GB_HOST_DEVICE inline uint32_t load_u16(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
  return __ldg(reinterpret_cast<const unsigned short*>(p));
#else
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
#endif
}

GB_HOST_DEVICE inline uint32_t byte_of(const uint32_t* w, int i) { return (w[i >> 2] >> (8 * (i & 3))) & 0xffu; }

template <WeightCodec C>
struct Piece;

template <>
struct Piece<WeightCodec::kF32> {
  static constexpr int kElems = 4;
  GB_HOST_DEVICE static void decode(const PackedMatrix& m, int64_t r, int64_t p, float* v) {
    uint32_t w[4];
    load16(m.row(r) + p * 16, w);
    for (int i = 0; i < 4; ++i) v[i] = f32_from_bits(w[i]);
  }
};

template <>
struct Piece<WeightCodec::kF16> {
  static constexpr int kElems = 8;
  GB_HOST_DEVICE static void decode(const PackedMatrix& m, int64_t r, int64_t p, float* v) {
    uint32_t w[4];
    load16(m.row(r) + p * 16, w);
    for (int i = 0; i < 8; ++i) v[i] = f16_to_f32(static_cast<uint16_t>(w[i >> 1] >> (16 * (i & 1))));
  }
};

template <>
struct Piece<WeightCodec::kBF16> {
  static constexpr int kElems = 8;
  GB_HOST_DEVICE static void decode(const PackedMatrix& m, int64_t r, int64_t p, float* v) {
    uint32_t w[4];
    load16(m.row(r) + p * 16, w);
    for (int i = 0; i < 8; ++i) v[i] = bf16_to_f32(static_cast<uint16_t>(w[i >> 1] >> (16 * (i & 1))));
  }
};

// int8 / fp8: x = s q, one scale for the whole piece (per row, or its group).
template <>
struct Piece<WeightCodec::kInt8> {
  static constexpr int kElems = 16;
  GB_HOST_DEVICE static void decode(const PackedMatrix& m, int64_t r, int64_t p, float* v) {
    uint32_t w[4];
    load16(m.row(r) + p * 16, w);
    const float s = int_scale(m, r, p * 16);
    for (int i = 0; i < 16; ++i) v[i] = s * static_cast<float>(static_cast<int8_t>(byte_of(w, i)));
  }
};

template <>
struct Piece<WeightCodec::kFp8> {
  static constexpr int kElems = 16;
  GB_HOST_DEVICE static void decode(const PackedMatrix& m, int64_t r, int64_t p, float* v) {
    uint32_t w[4];
    load16(m.row(r) + p * 16, w);
    const float s = int_scale(m, r, p * 16);
    for (int i = 0; i < 16; ++i) v[i] = s * fp8_e4m3_to_f32(static_cast<uint8_t>(byte_of(w, i)));
  }
};

// int4: x = s (q - z), element 2i in the low nibble; one group for the whole piece.
template <>
struct Piece<WeightCodec::kInt4> {
  static constexpr int kElems = 32;
  GB_HOST_DEVICE static void decode(const PackedMatrix& m, int64_t r, int64_t p, float* v) {
    uint32_t w[4];
    load16(m.row(r) + p * 16, w);
    const int64_t g = r * m.groups_per_row() + (p * 32) / m.group;
    const float s = f16_to_f32(static_cast<const uint16_t*>(m.scales)[g]);
    const float z = f16_to_f32(static_cast<const uint16_t*>(m.zeros)[g]);
    for (int i = 0; i < 32; ++i) {
      const uint32_t b = byte_of(w, i >> 1);
      const int q = static_cast<int>((i & 1) ? (b >> 4) : (b & 15));
      v[i] = s * (static_cast<float>(q) - z);
    }
  }
};

// nf4 / fp4: x = absmax table(q), element 2i in the high nibble; one absmax block.
template <bool kNf4>
struct PieceBnb4 {
  static constexpr int kElems = 32;
  GB_HOST_DEVICE static void decode(const PackedMatrix& m, int64_t r, int64_t p, float* v) {
    uint32_t w[4];
    load16(m.row(r) + p * 16, w);
    const float a = bnb_absmax(m, r, (p * 32) / m.group);
    for (int i = 0; i < 32; ++i) {
      const uint32_t b = byte_of(w, i >> 1);
      const uint8_t q = static_cast<uint8_t>((i & 1) ? (b & 15) : (b >> 4));
      v[i] = (kNf4 ? nf4_value(q) : fp4_value(q)) * a;
    }
  }
};
template <>
struct Piece<WeightCodec::kNf4> : PieceBnb4<true> {};
template <>
struct Piece<WeightCodec::kFp4> : PieceBnb4<false> {};

// q8_0: the block (34 bytes) copied through 2-byte loads, then the shared dequantizer.
template <>
struct Piece<WeightCodec::kQ8_0> {
  static constexpr int kElems = 32;
  GB_HOST_DEVICE static void decode(const PackedMatrix& m, int64_t r, int64_t p, float* v) {
    const uint8_t* b = m.row(r) + p * 34;
    BlockQ8_0 blk;
    blk.d = static_cast<uint16_t>(load_u16(b));
    for (int i = 0; i < 16; ++i) {
      const uint32_t u = load_u16(b + 2 + 2 * i);
      blk.qs[2 * i] = static_cast<int8_t>(static_cast<uint8_t>(u & 0xffu));
      blk.qs[2 * i + 1] = static_cast<int8_t>(static_cast<uint8_t>(u >> 8));
    }
    dequantize_q8_0(blk, v);
  }
};

// q4_0: the block (18 bytes) copied through 2-byte loads, then the shared dequantizer.
template <>
struct Piece<WeightCodec::kQ4_0> {
  static constexpr int kElems = 32;
  GB_HOST_DEVICE static void decode(const PackedMatrix& m, int64_t r, int64_t p, float* v) {
    const uint8_t* b = m.row(r) + p * 18;
    BlockQ4_0 blk;
    blk.d = static_cast<uint16_t>(load_u16(b));
    for (int i = 0; i < 8; ++i) {
      const uint32_t u = load_u16(b + 2 + 2 * i);
      blk.qs[2 * i] = static_cast<uint8_t>(u & 0xffu);
      blk.qs[2 * i + 1] = static_cast<uint8_t>(u >> 8);
    }
    dequantize_q4_0(blk, v);
  }
};

// q4_K: sub-block s (0..7) of superblock p / 8 (144 bytes, 16-byte aligned rows):
// dequantize_q4_K's d1 q - m1 with scale/min s; its codes are the low (s even) or
// high (s odd) nibbles of the 32 bytes at qs + 32 (s / 2).
template <>
struct Piece<WeightCodec::kQ4_K> {
  static constexpr int kElems = 32;
  GB_HOST_DEVICE static void decode(const PackedMatrix& m, int64_t r, int64_t p, float* v) {
    const uint8_t* b = m.row(r) + (p / 8) * 144;
    const int s = static_cast<int>(p % 8);
    uint32_t h[4], q0[4], q1[4];
    load16(b, h);  // d, dmin, scales[12]
    load16(b + 16 + 32 * (s / 2), q0);
    load16(b + 32 + 32 * (s / 2), q1);
    uint8_t scales[12];
    for (int i = 0; i < 12; ++i) scales[i] = static_cast<uint8_t>(byte_of(h, 4 + i));
    uint8_t sc, mn;
    ggml_scale_min_k4(s, scales, &sc, &mn);
    const float d1 = f16_to_f32(static_cast<uint16_t>(h[0] & 0xffffu)) * sc;
    const float m1 = f16_to_f32(static_cast<uint16_t>(h[0] >> 16)) * mn;
    for (int l = 0; l < 32; ++l) {
      const uint32_t byte = l < 16 ? byte_of(q0, l) : byte_of(q1, l - 16);
      v[l] = d1 * static_cast<int>((s & 1) ? (byte >> 4) : (byte & 0xF)) - m1;
    }
  }
};

// q6_K: elements [128 h + 32 g, + 32) of superblock p / 8 (210 bytes), h = s / 4,
// g = s % 4 for s = p % 8: dequantize_q6_K's d sc q with its ql / qh / scale fields.
template <>
struct Piece<WeightCodec::kQ6_K> {
  static constexpr int kElems = 32;
  GB_HOST_DEVICE static void decode(const PackedMatrix& m, int64_t r, int64_t p, float* v) {
    const uint8_t* b = m.row(r) + (p / 8) * 210;
    const int s = static_cast<int>(p % 8), h = s / 4, g = s % 4;
    const uint8_t* ql = b + 64 * h + 32 * (g & 1);  // ql[l] (g = 0, 2) or ql[l + 32] (g = 1, 3)
    const uint8_t* qh = b + 128 + 32 * h;
    const uint32_t sc2 = load_u16(b + 192 + 8 * h + 2 * g);  // sc[2 g + l / 16] of this half
    const float d = f16_to_f32(static_cast<uint16_t>(load_u16(b + 208)));
    const float d_lo = d * static_cast<int8_t>(static_cast<uint8_t>(sc2 & 0xffu));
    const float d_hi = d * static_cast<int8_t>(static_cast<uint8_t>(sc2 >> 8));
    for (int l2 = 0; l2 < 16; ++l2) {
      const uint32_t lw = load_u16(ql + 2 * l2), hw = load_u16(qh + 2 * l2);
      for (int t = 0; t < 2; ++t) {
        const int l = 2 * l2 + t;
        const uint32_t lb = (lw >> (8 * t)) & 0xffu, hb = (hw >> (8 * t)) & 0xffu;
        const uint32_t lo = g < 2 ? (lb & 0xFu) : (lb >> 4);
        const int8_t q = static_cast<int8_t>(static_cast<int>(lo | (((hb >> (2 * g)) & 3u) << 4)) - 32);
        v[l] = (l < 16 ? d_lo : d_hi) * q;
      }
    }
  }
};

// Whether the tuned GEMV takes W: a tuned codec whose rows are whole pieces, whose
// groups are whole pieces, and (for the 16-byte loads) whose rows start 16-byte aligned.
GB_HOST_DEVICE inline bool gemv_piece_fits(const PackedMatrix& m) {
  int elems = 0;
  bool wide = true;
  switch (m.codec) {
    case WeightCodec::kF32: elems = 4; break;
    case WeightCodec::kF16:
    case WeightCodec::kBF16: elems = 8; break;
    case WeightCodec::kInt8:
    case WeightCodec::kFp8: elems = 16; break;
    case WeightCodec::kInt4:
    case WeightCodec::kNf4:
    case WeightCodec::kFp4:
    case WeightCodec::kQ4_K: elems = 32; break;
    case WeightCodec::kQ8_0:
    case WeightCodec::kQ4_0:
    case WeightCodec::kQ6_K:
      elems = 32;
      wide = false;
      break;
    default: return false;
  }
  if (m.cols % elems != 0) return false;
  const bool grouped =
      m.codec == WeightCodec::kInt4 || m.codec == WeightCodec::kNf4 || m.codec == WeightCodec::kFp4 ||
      ((m.codec == WeightCodec::kInt8 || m.codec == WeightCodec::kFp8) && m.layout == ScaleLayout::kGroup);
  if (grouped && (m.group <= 0 || m.group % elems != 0)) return false;
  if (wide && (reinterpret_cast<uintptr_t>(m.codes) % 16 != 0 || m.row_bytes % 16 != 0)) return false;
  return true;
}

}  // namespace gb::kernels::cuda

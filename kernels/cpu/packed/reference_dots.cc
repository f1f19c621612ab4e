// Scalar reference dot products of the packed linear kernels
// (kernels/cpu/packed/packed_kernels.h): f32 activations through the codec's
// reference dequantizer, q8 activations with integer sums per block, written as
// plainly as the block layouts (kernels/codecs/ggml_blocks.h) allow.
#include <vector>

#include "kernels/cpu/packed/packed_kernels.h"

namespace gb::kernels::cpu {

bool has_avx2_fma_f16c() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         __builtin_cpu_supports("f16c");
  return ok;
}

double reference_dot_f32(const PackedMatrix& W, int64_t n, const float* x) {
  std::vector<float> w(static_cast<size_t>(W.cols));
  dequantize_row(W, n, w.data());
  double s = 0;
  for (int64_t k = 0; k < W.cols; ++k) s += double{w[static_cast<size_t>(k)]} * x[k];
  return s;
}

namespace {

// The signed 4/5-bit weights of a q4_0 ... q5_1 block as integers (before d, m).
void ggml32_ints(WeightCodec c, const uint8_t* blk, int* q, float* d, float* m) {
  *m = 0.0f;
  switch (c) {
    case WeightCodec::kQ8_0: {
      const auto& b = *reinterpret_cast<const BlockQ8_0*>(blk);
      *d = f16_to_f32(b.d);
      for (int j = 0; j < 32; ++j) q[j] = b.qs[j];
      return;
    }
    case WeightCodec::kQ4_0: {
      const auto& b = *reinterpret_cast<const BlockQ4_0*>(blk);
      *d = f16_to_f32(b.d);
      for (int j = 0; j < 16; ++j) {
        q[j] = (b.qs[j] & 15) - 8;
        q[j + 16] = (b.qs[j] >> 4) - 8;
      }
      return;
    }
    case WeightCodec::kQ4_1: {
      const auto& b = *reinterpret_cast<const BlockQ4_1*>(blk);
      *d = f16_to_f32(b.d);
      *m = f16_to_f32(b.m);
      for (int j = 0; j < 16; ++j) {
        q[j] = b.qs[j] & 15;
        q[j + 16] = b.qs[j] >> 4;
      }
      return;
    }
    case WeightCodec::kQ5_0:
    case WeightCodec::kQ5_1: {
      const bool one = c == WeightCodec::kQ5_1;
      const uint8_t* qh = one ? reinterpret_cast<const BlockQ5_1*>(blk)->qh : reinterpret_cast<const BlockQ5_0*>(blk)->qh;
      const uint8_t* qs = one ? reinterpret_cast<const BlockQ5_1*>(blk)->qs : reinterpret_cast<const BlockQ5_0*>(blk)->qs;
      *d = f16_to_f32(one ? reinterpret_cast<const BlockQ5_1*>(blk)->d : reinterpret_cast<const BlockQ5_0*>(blk)->d);
      if (one) *m = f16_to_f32(reinterpret_cast<const BlockQ5_1*>(blk)->m);
      const uint32_t h = ggml_load_u32(qh);
      for (int j = 0; j < 16; ++j) {
        q[j] = ((qs[j] & 15) | (((h >> j) & 1) << 4)) - (one ? 0 : 16);
        q[j + 16] = ((qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4)) - (one ? 0 : 16);
      }
      return;
    }
    default: return;
  }
}

}  // namespace

float reference_dot_q8_0(const PackedMatrix& W, int64_t n, const ActQ8_0* x) {
  const BlockShape bs = ggml_block_shape(W.codec);
  const uint8_t* row = W.row(n);
  float sum = 0.0f;
  int q[32];
  alignas(8) uint8_t scratch[sizeof(BlockQ8_0)];
  for (int64_t b = 0; b < W.cols / 32; ++b) {
    float d = 0.0f, m = 0.0f;
    ggml32_ints(W.codec, W.interleave ? ggml_row_block(W, n, b, scratch) : row + b * bs.bytes, q, &d, &m);
    int dot = 0;
    for (int j = 0; j < 32; ++j) dot += q[j] * x[b].qs[j];
    sum += d * x[b].d * static_cast<float>(dot) + m * x[b].s;
  }
  return sum;
}

float reference_dot_q8_K(const PackedMatrix& W, int64_t n, const ActQ8_K* x) {
  const BlockShape bs = ggml_block_shape(W.codec);
  const uint8_t* row = W.row(n);
  float sum = 0.0f;
  alignas(8) uint8_t scratch[sizeof(BlockQ4_K)];
  for (int64_t b = 0; b < W.cols / 256; ++b) {
    const ActQ8_K& a = x[b];
    const uint8_t* blk = W.interleave ? ggml_row_block(W, n, b, scratch) : row + b * bs.bytes;
    if (W.codec == WeightCodec::kQ4_K) {
      // x = d sc_j q - dmin m_j over 8 sub-blocks of 32.
      const auto& w = *reinterpret_cast<const BlockQ4_K*>(blk);
      int sumi = 0, summ = 0;
      for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        ggml_scale_min_k4(j, w.scales, &sc, &m);
        int dot = 0;
        for (int l = 0; l < 32; ++l) {
          const int e = 32 * j + l;  // element e: nibble (j & 1) of byte 32 (j / 2) + l
          const int qv = (j & 1) ? (w.qs[32 * (j / 2) + l] >> 4) : (w.qs[32 * (j / 2) + l] & 15);
          dot += qv * a.qs[e];
        }
        sumi += sc * dot;
        summ += m * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
      }
      sum += a.d * (f16_to_f32(w.d) * static_cast<float>(sumi) - f16_to_f32(w.dmin) * static_cast<float>(summ));
    } else if (W.codec == WeightCodec::kQ6_K) {
      // x = d sc_(e / 16) (q - 32), q 6 bits split over ql (4) and qh (2).
      const auto& w = *reinterpret_cast<const BlockQ6_K*>(blk);
      int sumi = 0;
      for (int half = 0; half < 2; ++half) {
        const uint8_t* ql = w.ql + 64 * half;
        const uint8_t* qh = w.qh + 32 * half;
        for (int l = 0; l < 32; ++l) {
          const int qv[4] = {(ql[l] & 15) | (((qh[l] >> 0) & 3) << 4), (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4),
                             (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4), (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)};
          for (int i = 0; i < 4; ++i) {
            const int e = 128 * half + 32 * i + l;
            sumi += w.scales[e / 16] * (qv[i] - 32) * a.qs[e];
          }
        }
      }
      sum += a.d * f16_to_f32(w.d) * static_cast<float>(sumi);
    } else if (W.codec == WeightCodec::kQ2_K || W.codec == WeightCodec::kQ3_K) {
      // q2_K: x = d (sc & 15) q - dmin (sc >> 4) per 16; q3_K: x = d (sc - 32)
      // (q - 4), q's third bit from hmask. Element 128 h + 32 j + l holds bits 2j of
      // qs[32 h + l] (and, for q3_K, bit 4 h + j of hmask[l]).
      const bool three = W.codec == WeightCodec::kQ3_K;
      const auto& w2 = *reinterpret_cast<const BlockQ2_K*>(blk);
      const auto& w3 = *reinterpret_cast<const BlockQ3_K*>(blk);
      const uint8_t* qs = three ? w3.qs : w2.qs;
      int8_t sc3[16];
      if (three) ggml_q3_K_scales(w3.scales, sc3);
      int sumi = 0, summ = 0;
      for (int h = 0; h < 2; ++h)
        for (int j = 0; j < 4; ++j)
          for (int l = 0; l < 32; ++l) {
            const int e = 128 * h + 32 * j + l, sub = e / 16;
            int qv = (qs[32 * h + l] >> (2 * j)) & 3;
            if (three) qv += ((w3.hmask[l] >> (4 * h + j)) & 1) * 4 - 4;
            const int scale = three ? sc3[sub] - 32 : w2.scales[sub] & 15;
            sumi += scale * qv * a.qs[e];
          }
      if (three) {
        sum += a.d * f16_to_f32(w3.d) * static_cast<float>(sumi);
      } else {
        for (int j = 0; j < 16; ++j) summ += (w2.scales[j] >> 4) * a.bsums[j];
        sum += a.d * (f16_to_f32(w2.d) * static_cast<float>(sumi) - f16_to_f32(w2.dmin) * static_cast<float>(summ));
      }
    } else if (W.codec == WeightCodec::kQ5_K) {
      // q4_K's layout and scales, with bit 2 (j / 2) + (j & 1) of qh[l] as 16.
      const auto& w = *reinterpret_cast<const BlockQ5_K*>(blk);
      int sumi = 0, summ = 0;
      for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        ggml_scale_min_k4(j, w.scales, &sc, &m);
        int dot = 0;
        for (int l = 0; l < 32; ++l) {
          const uint8_t byte = w.qs[32 * (j / 2) + l];
          const int qv = ((j & 1) ? (byte >> 4) : (byte & 15)) + ((w.qh[l] >> j) & 1) * 16;
          dot += qv * a.qs[32 * j + l];
        }
        sumi += sc * dot;
        summ += m * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
      }
      sum += a.d * (f16_to_f32(w.d) * static_cast<float>(sumi) - f16_to_f32(w.dmin) * static_cast<float>(summ));
    }
  }
  return sum;
}

void linear_q8_reference(const QuantizedActivations& xq, const PackedMatrix& W, const float* bias, int64_t n0,
                         int64_t n1, float* y, int64_t ldy) {
  const int block = q8_activation_block(W.codec);
  const int64_t nb = W.cols / block;
  for (int64_t m = 0; m < xq.rows; ++m)
    for (int64_t n = n0; n < n1; ++n) {
      const float d = block == 32 ? reference_dot_q8_0(W, n, xq.q8_0.data() + m * nb)
                                  : reference_dot_q8_K(W, n, xq.q8_K.data() + m * nb);
      y[m * ldy + n] = d + (bias ? bias[n] : 0.0f);
    }
}

}  // namespace gb::kernels::cpu

// llama.cpp's reference quantizers of the K types (quantize_row_q{2,3,4,5,6}_K_ref
// with make_qx_quants, make_q3_quants and make_qkx2_quants, ggml-quants.c), one
// superblock of 256 elements at a time, written again from the algorithms with the
// same float operations in the same order, so that they give llama.cpp's blocks bit
// for bit (tests/kernels/quantize/ checks them against llama.cpp's own quantizer and
// the peer GGUF files). For the host (kernels/quantize/ggml_quantize_k.cc: rows) and
// the device alike (kernels/codecs/synthetic_quantize.h: synthetic superblocks): as
// kernels/codecs/group_quantize.h, a translation unit of nvcc that calls these is
// compiled with --fmad=false, so that each product is rounded before its sum.
#pragma once

#include <cstdint>

#include "kernels/codecs/float16.h"
#include "kernels/codecs/ggml_blocks.h"
#include "kernels/codecs/group_quantize.h"
#include "kernels/codecs/host_device.h"

namespace gb::kernels {

GB_HOST_DEVICE inline int kq_max(int a, int b) { return a < b ? b : a; }
GB_HOST_DEVICE inline int kq_min(int a, int b) { return b < a ? b : a; }

inline constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest (ties to even) by the float magic-number trick llama.cpp uses;
// valid for |f| <= 4194303.
GB_HOST_DEVICE inline int nearest_int(float f) {
  const float v = f + 12582912.f;
  const int32_t i = static_cast<int32_t>(f32_bits(v));
  return (i & 0x007fffff) - 0x00400000;
}

// Symmetric codes in [-nmax, nmax - 1] (stored + nmax) with a scale refined over 18
// candidate inverse scales (rmse_type 1: weights x^2).
GB_HOST_DEVICE inline float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw) {
  float amax;
  const float max = signed_absmax([x](int64_t i) { return x[i]; }, n, &amax);
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -nmax / max;
  if (rmse_type == 0) {
    for (int i = 0; i < n; ++i) {
      const int l = nearest_int(iscale * x[i]);
      L[i] = static_cast<int8_t>(nmax + kq_max(-nmax, kq_min(nmax - 1, l)));
    }
    return 1 / iscale;
  }
  bool return_early = false;
  if (rmse_type < 0) {
    rmse_type = -rmse_type;
    return_early = true;
  }
  auto weight = [&](int i) {
    return qw ? qw[i]
              : rmse_type == 1 ? x[i] * x[i]
              : rmse_type == 2 ? 1.0f
              : rmse_type == 3 ? quant_abs(x[i])
                               : quant_sqrt(quant_abs(x[i]));
  };
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = kq_max(-nmax, kq_min(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = weight(i);
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  if (return_early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = kq_max(-nmax, kq_min(nmax - 1, l));
      const float w = weight(i);
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * x[i]);
        L[i] = static_cast<int8_t>(nmax + kq_max(-nmax, kq_min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// q3_K's codes in [-nmax, nmax - 1] (stored + nmax), refined code by code.
GB_HOST_DEVICE inline float make_q3_quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse) {
  float amax;
  const float max = signed_absmax([x](int64_t i) { return x[i]; }, n, &amax);
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  const float iscale = -nmax / max;
  if (do_rmse) {
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = kq_max(-nmax, kq_min(nmax - 1, l));
      L[i] = static_cast<int8_t>(l);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; ++itry) {
      int n_changed = 0;
      for (int i = 0; i < n; ++i) {
        const float w = x[i] * x[i];
        float slx = sumlx - w * x[i] * L[i];
        if (slx > 0) {
          float sl2 = suml2 - w * L[i] * L[i];
          int new_l = nearest_int(x[i] * sl2 / slx);
          new_l = kq_max(-nmax, kq_min(nmax - 1, new_l));
          if (new_l != L[i]) {
            slx += w * x[i] * new_l;
            sl2 += w * new_l * new_l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
              L[i] = static_cast<int8_t>(new_l);
              sumlx = slx;
              suml2 = sl2;
              ++n_changed;
            }
          }
        }
      }
      if (!n_changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
    return sumlx / suml2;
  }
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = kq_max(-nmax, kq_min(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
  }
  return 1 / iscale;
}

// Asymmetric codes in [0, nmax] with a min <= 0: a weighted least-squares scale and
// min over nstep + 1 candidate ranges. Returns the scale; *the_min = -min.
GB_HOST_DEVICE inline float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_mad = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(kq_max(0, kq_min(nmax, l)));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? quant_abs(diff) : diff * diff;
    best_mad += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = kq_max(0, kq_min(nmax, l));
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float mad = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * Laux[i] + this_min - x[i];
        diff = use_mad ? quant_abs(diff) : diff * diff;
        mad += weights[i] * diff;
      }
      if (mad < best_mad) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_mad = mad;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// The 2-bit planes of q2_K / q3_K: element j + l, j + l + 32, j + l + 64, j + l + 96 of
// each 128 in bits 0-1, 2-3, 4-5, 6-7 of byte j / 4 + l.
GB_HOST_DEVICE inline void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK_K; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] =
          static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

GB_HOST_DEVICE inline void quantize_block_q2_K(const float* x, BlockQ2_K& y) {
  uint8_t L[kQK_K], Laux[16];
  float weights[16], mins[kQK_K / 16], scales[kQK_K / 16];
  const float q4scale = 15.f;
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kQK_K / 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = quant_abs(x[16 * j + l]);
    scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  if (max_scale > 0) {
    const float iscale = q4scale / max_scale;
    for (int j = 0; j < kQK_K / 16; ++j) y.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
    y.d = f32_to_f16(max_scale / q4scale);
  } else {
    for (int j = 0; j < kQK_K / 16; ++j) y.scales[j] = 0;
    y.d = f32_to_f16(0.f);
  }
  if (max_min > 0) {
    const float iscale = q4scale / max_min;
    for (int j = 0; j < kQK_K / 16; ++j)
      y.scales[j] = static_cast<uint8_t>(y.scales[j] | (nearest_int(iscale * mins[j]) << 4));
    y.dmin = f32_to_f16(max_min / q4scale);
  } else {
    y.dmin = f32_to_f16(0.f);
  }
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = f16_to_f32(y.d) * (y.scales[j] & 0xF);
    if (!d) continue;
    const float dm = f16_to_f32(y.dmin) * (y.scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      int l = nearest_int((x[16 * j + ii] + dm) / d);
      L[16 * j + ii] = static_cast<uint8_t>(kq_max(0, kq_min(3, l)));
    }
  }
  pack_2bit(L, y.qs);
}

GB_HOST_DEVICE inline void quantize_block_q3_K(const float* x, BlockQ3_K& y) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  float max_scale = 0, amax = 0;
  for (int j = 0; j < kQK_K / 16; ++j) {
    scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j, true);
    const float scale = quant_abs(scales[j]);
    if (scale > amax) {
      amax = scale;
      max_scale = scales[j];
    }
  }
  for (uint8_t& s : y.scales) s = 0;
  if (max_scale) {
    const float iscale = -32.f / max_scale;
    for (int j = 0; j < kQK_K / 16; ++j) {
      int8_t l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
      l = static_cast<int8_t>(kq_max(-32, kq_min(31, l)) + 32);
      if (j < 8) y.scales[j] = static_cast<uint8_t>(l & 0xF);
      else y.scales[j - 8] = static_cast<uint8_t>(y.scales[j - 8] | ((l & 0xF) << 4));
      l = static_cast<int8_t>(l >> 4);
      y.scales[j % 4 + 8] = static_cast<uint8_t>(y.scales[j % 4 + 8] | (l << (2 * (j / 4))));
    }
    y.d = f32_to_f16(1 / iscale);
  } else {
    y.d = f32_to_f16(0.f);
  }
  for (int j = 0; j < kQK_K / 16; ++j) {
    int sc = j < 8 ? y.scales[j] & 0xF : y.scales[j - 8] >> 4;
    sc = (sc | (((y.scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
    const float d = f16_to_f32(y.d) * sc;
    if (!d) continue;
    for (int ii = 0; ii < 16; ++ii) {
      int l = nearest_int(x[16 * j + ii] / d);
      l = kq_max(-4, kq_min(3, l));
      L[16 * j + ii] = static_cast<int8_t>(l + 4);
    }
  }
  for (uint8_t& h : y.hmask) h = 0;
  int m = 0;
  uint8_t hm = 1;
  for (int j = 0; j < kQK_K; ++j) {
    if (L[j] > 3) {
      y.hmask[m] = static_cast<uint8_t>(y.hmask[m] | hm);
      L[j] = static_cast<int8_t>(L[j] - 4);
    }
    if (++m == kQK_K / 8) {
      m = 0;
      hm = static_cast<uint8_t>(hm << 1);
    }
  }
  uint8_t U[kQK_K];
  for (int j = 0; j < kQK_K; ++j) U[j] = static_cast<uint8_t>(L[j]);
  pack_2bit(U, y.qs);
}

// The eight 32-element sub-blocks of a q4_K / q5_K superblock: scales and mins by
// make_qkx2_quants, packed as 6-bit values, then the codes against the rounded ones.
template <typename Block>
GB_HOST_DEVICE void quantize_k4_scales(const float* x, Block& y, uint8_t* L, int nmax, float rmin, int nstep) {
  uint8_t Laux[32];
  float weights[32], mins[kQK_K / 32], scales[kQK_K / 32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kQK_K / 32; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = quant_sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + quant_abs(x[32 * j + l]);
    scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
    uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
    ls = (ls < 63 ? ls : uint8_t{63});
    lm = (lm < 63 ? lm : uint8_t{63});
    if (j < 4) {
      y.scales[j] = ls;
      y.scales[j + 4] = lm;
    } else {
      y.scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      y.scales[j - 4] = static_cast<uint8_t>(y.scales[j - 4] | ((ls >> 4) << 6));
      y.scales[j] = static_cast<uint8_t>(y.scales[j] | ((lm >> 4) << 6));
    }
  }
  y.d = f32_to_f16(max_scale / 63.f);
  y.dmin = f32_to_f16(max_min / 63.f);
  uint8_t sc, m;
  for (int j = 0; j < kQK_K / 32; ++j) {
    ggml_scale_min_k4(j, y.scales, &sc, &m);
    const float d = f16_to_f32(y.d) * sc;
    if (!d) continue;
    const float dm = f16_to_f32(y.dmin) * m;
    for (int ii = 0; ii < 32; ++ii) {
      int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<uint8_t>(kq_max(0, kq_min(nmax, l)));
    }
  }
}

GB_HOST_DEVICE inline void quantize_block_q4_K(const float* x, BlockQ4_K& y) {
  uint8_t L[kQK_K];
  quantize_k4_scales(x, y, L, 15, -1.f, 20);
  uint8_t* q = y.qs;
  for (int j = 0; j < kQK_K; j += 64) {
    for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    q += 32;
  }
}

GB_HOST_DEVICE inline void quantize_block_q5_K(const float* x, BlockQ5_K& y) {
  uint8_t L[kQK_K];
  quantize_k4_scales(x, y, L, 31, -0.5f, 15);
  uint8_t* qh = y.qh;
  uint8_t* ql = y.qs;
  for (int j = 0; j < kQK_K / 8; ++j) qh[j] = 0;
  uint8_t m1 = 1, m2 = 2;
  for (int n = 0; n < kQK_K; n += 64) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[n + j];
      if (l1 > 15) {
        l1 -= 16;
        qh[j] = static_cast<uint8_t>(qh[j] | m1);
      }
      int l2 = L[n + j + 32];
      if (l2 > 15) {
        l2 -= 16;
        qh[j] = static_cast<uint8_t>(qh[j] | m2);
      }
      ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
    m1 = static_cast<uint8_t>(m1 << 2);
    m2 = static_cast<uint8_t>(m2 << 2);
    ql += 32;
  }
}

GB_HOST_DEVICE inline void quantize_block_q6_K(const float* x, BlockQ6_K& y) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, nullptr);
    scales[ib] = scale;
    const float abs_scale = quant_abs(scale);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scale;
    }
  }
  if (max_abs_scale < kGroupMaxEps) {
    y = BlockQ6_K{};
    y.d = f32_to_f16(0.f);
    return;
  }
  const float iscale = -128.f / max_scale;
  y.d = f32_to_f16(1 / iscale);
  for (int ib = 0; ib < kQK_K / 16; ++ib)
    y.scales[ib] = static_cast<int8_t>(kq_min(127, nearest_int(iscale * scales[ib])));
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = f16_to_f32(y.d) * y.scales[j];
    if (!d) continue;
    for (int ii = 0; ii < 16; ++ii) {
      int l = nearest_int(x[16 * j + ii] / d);
      l = kq_max(-32, kq_min(31, l));
      L[16 * j + ii] = static_cast<int8_t>(l + 32);
    }
  }
  uint8_t* ql = y.ql;
  uint8_t* qh = y.qh;
  for (int j = 0; j < kQK_K; j += 128) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF,
                    q4 = L[j + l + 96] & 0xF;
      ql[l + 0] = static_cast<uint8_t>(q1 | (q3 << 4));
      ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
      qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                   ((L[j + l + 96] >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
}

// Superblock x[0, 256) of a K codec, written at out (the block's bytes).
GB_HOST_DEVICE inline void quantize_k_block(WeightCodec codec, const float* x, uint8_t* out) {
  switch (codec) {
    case WeightCodec::kQ2_K: quantize_block_q2_K(x, *reinterpret_cast<BlockQ2_K*>(out)); break;
    case WeightCodec::kQ3_K: quantize_block_q3_K(x, *reinterpret_cast<BlockQ3_K*>(out)); break;
    case WeightCodec::kQ4_K: quantize_block_q4_K(x, *reinterpret_cast<BlockQ4_K*>(out)); break;
    case WeightCodec::kQ5_K: quantize_block_q5_K(x, *reinterpret_cast<BlockQ5_K*>(out)); break;
    case WeightCodec::kQ6_K: quantize_block_q6_K(x, *reinterpret_cast<BlockQ6_K*>(out)); break;
    default: break;
  }
}

GB_HOST_DEVICE constexpr bool is_k_ggml_codec(WeightCodec c) {
  return c == WeightCodec::kQ2_K || c == WeightCodec::kQ3_K || c == WeightCodec::kQ4_K || c == WeightCodec::kQ5_K ||
         c == WeightCodec::kQ6_K;
}

}  // namespace gb::kernels

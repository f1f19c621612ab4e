// kv_store (kernels/cuda/attention/kv_store.h): writes rows of new keys and values into
// KV cache slots. One warp per (row, kv head) stores that head of the key, then of the
// value: f32/f16/bf16 element by element (store_kv_element); a quantized element with
// its scale and zero point computed in the warp by the rules of kv_quantize_head
// (kernels/codecs/kv_quant.h), with the codec's own helpers (kv_scale_f16_up,
// f32_to_f16, kv_round, f32_to_fp8_e4m3, kv_store_u16), so that the bytes equal the
// CPU's bit for bit: the group's min and max are reduced across lanes with ties broken
// by the lower index (the CPU's sequential scan keeps the first of equal values, which
// only matters for +0 and -0), the f32 arithmetic is done in the same order without
// contraction, and each lane writes whole code bytes (int4: the two nibbles of a byte).
// Launch: 1D grid of ceil(n * kv_heads / 4) blocks of 4 warps (128 threads).
// Correct and simple first; not yet tuned (lanes read floats one at a time, strided by
// 32, and every group costs a few warp reductions).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "kernels/codecs/fp8.h"
#include "kernels/codecs/kv_quant.h"
#include "kernels/cuda/attention/kv_decoder.h"
#include "kernels/cuda/attention/kv_store.h"

namespace gb::kernels::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr unsigned kFullMask = 0xffffffffu;

struct StoreArgs {
  const float* k;
  const float* v;
  int64_t n;
  int64_t row_stride;
  KvDecoder d;
  KvPlane kc;  // contiguous or paged (KvPlane::slot)
  KvPlane vc;
  const float* k_calib;
  const float* v_calib;
  int64_t slot;
  const int64_t* visible;  // non-null: row r goes to slot visible[r] - 1 (kv_store_at)
  int32_t heads;
};

// The extreme of a group and the first index holding it: lanes' (value, index) pairs
// reduced so that every lane ends with the pair the CPU's scan would keep.
struct Extreme {
  float value;
  int32_t index;
};

__device__ inline Extreme warp_extreme(Extreme e, bool is_min) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    Extreme o;
    o.value = __shfl_xor_sync(kFullMask, e.value, off);
    o.index = __shfl_xor_sync(kFullMask, e.index, off);
    const bool better = is_min ? o.value < e.value : o.value > e.value;
    if (better || (o.value == e.value && o.index < e.index)) e = o;
  }
  return e;
}

__device__ inline float warp_max_abs(float a) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float o = __shfl_xor_sync(kFullMask, a, off);
    a = o > a ? o : a;
  }
  return a;
}

// Head h of one token, x[0, head_dim), into `slot`; every lane of the warp calls it.
__device__ void store_head(const KvDecoder& d, const float* x, int32_t h, const float* calib, uint8_t* slot,
                           int lane) {
  const KvSlotLayout& L = d.layout;
  const int32_t hd = d.head_dim;
  uint8_t* codes = d.codes(slot, h);
  if (!kv_element_quantized(L.element)) {
    for (int32_t j = lane; j < hd; j += 32) store_kv_element(codes, L.element, j, x[j]);
    return;
  }
  const bool int4 = L.element == KvElement::kInt4 || L.element == KvElement::kInt4G32;
  for (int32_t g = 0; g < d.groups_per_head; ++g) {
    const int32_t j0 = g * d.group, j1 = j0 + d.group < hd ? j0 + d.group : hd;
    uint8_t* meta = d.meta(slot, h, g);
    if (L.element == KvElement::kFp8) {
      float amax = 0;
      for (int32_t j = j0 + lane; j < j1; j += 32) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
      amax = warp_max_abs(amax);
      const uint16_t sh = kv_scale_f16_up(amax / kFp8E4m3Max);
      if (lane == 0) kv_store_u16(meta, sh);
      const float s = f16_to_f32(sh);
      for (int32_t j = j0 + lane; j < j1; j += 32) codes[j] = s > 0 ? f32_to_fp8_e4m3(x[j] / s) : 0;
      continue;
    }
    float s, z;
    if (L.element == KvElement::kInt8Calib) {
      s = calib[2 * h];
      z = calib[2 * h + 1];
    } else {
      Extreme mn{INFINITY, INT32_MAX}, mx{-INFINITY, INT32_MAX};
      for (int32_t j = j0 + lane; j < j1; j += 32) {
        if (x[j] < mn.value || mn.index == INT32_MAX) mn = {x[j], j};
        if (x[j] > mx.value || mx.index == INT32_MAX) mx = {x[j], j};
      }
      mn = warp_extreme(mn, true);
      mx = warp_extreme(mx, false);
      // As kv_quantize_head: z = 0.5 mn + 0.5 mx rounded to f16 (no contraction into an
      // fma, which the host does not do either), s over the half range around z.
      const uint16_t zh = f32_to_f16(__fadd_rn(__fmul_rn(0.5f, mn.value), __fmul_rn(0.5f, mx.value)));
      z = f16_to_f32(zh);
      const float half = mx.value - z > z - mn.value ? mx.value - z : z - mn.value;
      const uint16_t sh = kv_scale_f16_up(half / (int4 ? 7.5f : 127.5f));
      if (lane == 0) {
        kv_store_u16(meta, sh);
        kv_store_u16(meta + 2, zh);
      }
      s = f16_to_f32(sh);
    }
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    const float lo = int4 ? -8.0f : -128.0f, hi = int4 ? 7.0f : 127.0f;
    if (int4) {
      // Byte b holds elements 2b (low nibble) and 2b + 1; j0 is even, so a byte never
      // straddles two groups.
      for (int32_t b = j0 / 2 + lane; b < (j1 + 1) / 2; b += 32) {
        int byte = 0;
        for (int32_t j = 2 * b; j < 2 * b + 2 && j < j1; ++j) {
          float q = kv_round(__fmul_rn(x[j] - z, inv));
          q = q < lo ? lo : (q > hi ? hi : q);
          byte |= static_cast<int>(q + 8.0f) << ((j & 1) * 4);
        }
        codes[b] = static_cast<uint8_t>(byte);
      }
    } else {
      for (int32_t j = j0 + lane; j < j1; j += 32) {
        float q = kv_round(__fmul_rn(x[j] - z, inv));
        q = q < lo ? lo : (q > hi ? hi : q);
        codes[j] = static_cast<uint8_t>(static_cast<int8_t>(q));
      }
    }
  }
}

__global__ void __launch_bounds__(kWarpsPerBlock * 32) kv_store_kernel(StoreArgs a) {
  const int64_t w = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x & 31);
  if (w >= a.n * a.heads) return;  // uniform per warp: the whole warp leaves
  const int64_t r = w / a.heads;
  const int32_t h = static_cast<int32_t>(w % a.heads);
  const int64_t slot = a.visible != nullptr ? a.visible[r] - 1 : a.slot + r;
  if (slot < 0) return;  // a row that sees no slot has none to write (uniform per warp)
  const int64_t x_off = r * a.row_stride + static_cast<int64_t>(h) * a.d.head_dim;
  store_head(a.d, a.k + x_off, h, a.k_calib, a.kc.slot(slot), lane);
  store_head(a.d, a.v + x_off, h, a.v_calib, a.vc.slot(slot), lane);
}

Status fail(const std::string& what) { return Error{"cuda kv_store: " + what}; }

// Both entry points: rows into [slot, slot + n), or (visible non-null) row r into
// visible[r] - 1.
Status store(cudaStream_t s, const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
             const KvCacheView& cache, int64_t slot, const int64_t* visible) {
  if (n < 0) return fail("n = " + std::to_string(n) + " rows, expected >= 0");
  if (n == 0) return Status::Ok();
  if (cache.kv_heads <= 0 || cache.head_dim <= 0 || cache.kv_heads > INT32_MAX / cache.head_dim)
    return fail("cache kv_heads " + std::to_string(cache.kv_heads) + " x head_dim " +
                std::to_string(cache.head_dim) + ": expected positive, their product an int32");
  if (kv_width != cache.kv_heads * cache.head_dim)
    return fail("kv_width " + std::to_string(kv_width) + " != kv_heads * head_dim = " +
                std::to_string(cache.kv_heads * cache.head_dim));
  if (n > 1 && row_stride < kv_width)
    return fail("row_stride " + std::to_string(row_stride) + " < kv_width " + std::to_string(kv_width));
  if (visible == nullptr && slot < 0) return fail("slot " + std::to_string(slot) + " < 0");
  if (k == nullptr || v == nullptr || !cache.k_plane().valid() || !cache.v_plane().valid())
    return fail("null k, v or cache plane");
  if (cache.element == KvElement::kInt8Calib && (cache.k_calib == nullptr || cache.v_calib == nullptr))
    return fail("int8-calib cache without its k_calib / v_calib");
  if (!kv_element_quantized(cache.element)) {
    const size_t es = kv_element_size(cache.element);
    if (reinterpret_cast<uintptr_t>(cache.k) % es != 0 || reinterpret_cast<uintptr_t>(cache.v) % es != 0 ||
        cache.k_offset % static_cast<int64_t>(es) != 0 || cache.v_offset % static_cast<int64_t>(es) != 0)
      return fail("cache planes not aligned to their " + std::to_string(es) + "-byte elements");
  }
  const int64_t warps = n * cache.kv_heads;
  const int64_t blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > INT32_MAX) return fail("too many rows: " + std::to_string(n));
  StoreArgs a{k,
              v,
              n,
              row_stride,
              KvDecoder::of(cache.layout()),
              cache.k_plane(),
              cache.v_plane(),
              cache.k_calib,
              cache.v_calib,
              slot,
              visible,
              static_cast<int32_t>(cache.kv_heads)};
  kv_store_kernel<<<static_cast<unsigned>(blocks), kWarpsPerBlock * 32, 0, s>>>(a);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess)
    return fail(std::string("launch failed: ") + cudaGetErrorString(e));
  return Status::Ok();
}

}  // namespace

Status kv_store(cudaStream_t s, const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                const KvCacheView& cache, int64_t slot) {
  return store(s, k, v, n, row_stride, kv_width, cache, slot, nullptr);
}

Status kv_store_at(cudaStream_t s, const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                   const KvCacheView& cache, const int64_t* visible) {
  if (n > 0 && visible == nullptr) return fail("null visible");
  return store(s, k, v, n, row_stride, kv_width, cache, 0, visible);
}

}  // namespace gb::kernels::cuda

// The attention entry points (kernels/cuda/attention/attention.h): argument checks,
// the choice between flash-decoding (n == 1, attention_decode.cu) and the
// flash-attention prefill (n > 1, attention_prefill.cu), the workspace size and the
// kernel names. No kernel here.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "kernels/cuda/attention/attention.h"
#include "kernels/cuda/attention/attention_internal.cuh"

namespace gb::kernels::cuda {
namespace {

Status fail(const std::string& what) { return Error{"cuda attention: " + what}; }

const char* element_name(KvElement e) {
  switch (e) {
    case KvElement::kF32: return "f32";
    case KvElement::kF16: return "f16";
    case KvElement::kBF16: return "bf16";
    case KvElement::kInt8: return "int8";
    case KvElement::kFp8: return "fp8";
    case KvElement::kInt4: return "int4";
    case KvElement::kInt4G32: return "int4-g32";
    case KvElement::kInt8Calib: return "int8-calib";
  }
  return "unknown";
}

std::string s(int64_t v) { return std::to_string(v); }

}  // namespace

size_t attention_workspace_bytes(int64_t n, int64_t heads, int64_t head_dim, int64_t max_len) {
  if (n <= 0 || heads <= 0 || head_dim <= 0) return 0;
  // Only a one-row call (decode) uses the workspace; its chunk count never decreases
  // with the length, so max_len bounds every shorter cache. kv_heads does not matter.
  return detail::decode_plan(1, heads, heads, head_dim, max_len < 0 ? 0 : max_len).workspace_bytes;
}

std::string attention_kernel_name(const KvCacheView& cache, int64_t n) {
  return std::string(element_name(cache.element)) + (n == 1 ? "-flash-decode" : "-flash-prefill") +
         (cache.keys_unrotated ? "-unrotated" : "") + "-cuda";
}

Status attention(cudaStream_t st, const float* q, int64_t n, int64_t q_stride, int64_t heads, int64_t kv_heads,
                 int64_t head_dim, const KvCacheView& cache, const int64_t* visible, const RopeTable& rope,
                 float scale, float* out, void* workspace, size_t workspace_bytes) {
  if (n < 0) return fail("n = " + s(n) + " rows, expected >= 0");
  if (n == 0) return Status::Ok();
  if (heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0)
    return fail("heads " + s(heads) + " and kv_heads " + s(kv_heads) + ": expected positive, heads a multiple");
  if (heads > INT32_MAX / 2)
    return fail("heads " + s(heads) + ": too many");
  if (head_dim <= 0 || head_dim > kAttentionMaxHeadDim)
    return fail("head_dim " + s(head_dim) + ": expected 1.." + s(kAttentionMaxHeadDim));
  if (cache.kv_heads != kv_heads || cache.head_dim != head_dim)
    return fail("cache has kv_heads " + s(cache.kv_heads) + ", head_dim " + s(cache.head_dim) + "; the call " +
                s(kv_heads) + ", " + s(head_dim));
  if (cache.len < 0) return fail("cache len " + s(cache.len) + " < 0");
  if (n > 1 && q_stride < heads * head_dim)
    return fail("q_stride " + s(q_stride) + " < heads * head_dim = " + s(heads * head_dim));
  if (q == nullptr || out == nullptr || visible == nullptr) return fail("null q, out or visible");
  if (cache.len > 0) {
    if (!cache.k_plane().valid() || !cache.v_plane().valid()) return fail("null cache plane");
    if (cache.element == KvElement::kInt8Calib && (cache.k_calib == nullptr || cache.v_calib == nullptr))
      return fail("int8-calib cache without its k_calib / v_calib");
    if (!kv_element_quantized(cache.element)) {
      const size_t es = kv_element_size(cache.element);
      if (reinterpret_cast<uintptr_t>(cache.k) % es != 0 || reinterpret_cast<uintptr_t>(cache.v) % es != 0 ||
          cache.k_offset % static_cast<int64_t>(es) != 0 || cache.v_offset % static_cast<int64_t>(es) != 0)
        return fail("cache planes not aligned to their " + s(static_cast<int64_t>(es)) + "-byte elements");
    }
  }
  const int64_t rot_dim = cache.keys_unrotated ? rope.rot_dim : 0;
  if (rot_dim < 0 || rot_dim % 2 != 0 || rot_dim > head_dim)
    return fail("rot_dim " + s(rot_dim) + ": expected even, 0.." + s(head_dim));
  if (rot_dim > 0 && rope.inv_freq == nullptr) return fail("keys stored unrotated but no inv_freq");

  detail::AttnArgs a{};
  a.q = q;
  a.q_stride = q_stride;
  a.n = n;
  a.heads = heads;
  a.kv_heads = kv_heads;
  a.head_dim = static_cast<int32_t>(head_dim);
  a.group = static_cast<int32_t>(heads / kv_heads);
  a.d = KvDecoder::of(cache.layout());
  a.k = cache.k_plane();
  a.v = cache.v_plane();
  a.k_calib = cache.k_calib;
  a.v_calib = cache.v_calib;
  a.len = cache.len;
  a.visible = visible;
  a.rot_dim = static_cast<int32_t>(rot_dim);
  a.inv_freq = rope.inv_freq;
  a.scale = scale;
  a.out = out;

  cudaError_t e;
  if (n == 1) {
    const detail::DecodePlan p = detail::decode_plan(n, heads, kv_heads, head_dim, cache.len);
    if (workspace_bytes < p.workspace_bytes || workspace == nullptr)
      return fail("workspace of " + s(static_cast<int64_t>(workspace_bytes)) + " bytes at " +
                  (workspace ? "a pointer" : "null") + ", needs " + s(static_cast<int64_t>(p.workspace_bytes)) +
                  " (attention_workspace_bytes)");
    if (reinterpret_cast<uintptr_t>(workspace) % alignof(float) != 0) return fail("workspace not float-aligned");
    if (p.blocks > INT32_MAX) return fail("too many blocks: " + s(p.blocks));
    if (p.smem_bytes > detail::kSmemBudget)  // a planning bug, not the caller's: said rather than launched
      return fail("decode plan needs " + s(static_cast<int64_t>(p.smem_bytes)) + " bytes of shared memory");
    e = detail::launch_decode(st, a, p, static_cast<float*>(workspace));
  } else {
    const detail::PrefillPlan p = detail::prefill_plan(n, heads, kv_heads, head_dim);
    if (p.blocks > INT32_MAX) return fail("too many blocks: " + s(p.blocks));
    if (p.smem_bytes + detail::kPrefillMaxQueries * sizeof(int64_t) > detail::kSmemBudget)
      return fail("prefill plan needs " + s(static_cast<int64_t>(p.smem_bytes)) + " bytes of shared memory");
    e = detail::launch_prefill(st, a, p);
  }
  if (e != cudaSuccess) return fail(std::string("launch failed: ") + cudaGetErrorString(e));
  return Status::Ok();
}

}  // namespace gb::kernels::cuda

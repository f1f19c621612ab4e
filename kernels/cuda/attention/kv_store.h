// kv_store on the device: new keys and values into KV cache slots, converted to the
// cache's element or quantized into packed slots (kernels/codecs/kv_quant.h) with the
// per-token-and-head (int4-g32: per-group) scale and zero point computed in the
// kernel, byte for byte what kernels/cpu/kv_store.h writes. Not the cache's slot
// allocation (the backend's) nor reading slots back (attention.h reads them as stored).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"
#include "kernels/cuda/attention/kv_cache_view.h"

namespace gb::kernels::cuda {

// Rows [0, n) of k and v ([n, kv_width] floats at row stride `row_stride`, device
// memory) into slots [slot, slot + n) of cache.k and cache.v; kv_width must be
// cache.kv_heads * cache.head_dim. Enqueued on `s`, never synchronizes, allocates
// nothing. An invalid argument or a launch failure is an Error (nothing enqueued for
// an invalid argument). The caller guarantees that the planes hold slot + n slots.
Status kv_store(cudaStream_t s, const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                const KvCacheView& cache, int64_t slot);

// The same with each row's slot read on the device: row r goes to slot visible[r] - 1
// (visible: device, n values, the visible lengths attention() takes for the same rows;
// a row with visible[r] < 1 is not written). Nothing about the slots is decided on the
// host, so a CUDA graph that captured this call replays it for the slots of any later
// step (the backend's decode-step graphs). The caller guarantees that the planes hold
// every visible[r] slots.
Status kv_store_at(cudaStream_t s, const float* k, const float* v, int64_t n, int64_t row_stride, int64_t kv_width,
                   const KvCacheView& cache, const int64_t* visible);

}  // namespace gb::kernels::cuda

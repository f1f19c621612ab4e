// KvCacheView for the CUDA attention kernels: the shared view of
// kernels/codecs/kv_cache_view.h (engine::KvLayerView is the same struct), every
// pointer device memory.
#pragma once

#include "kernels/codecs/kv_cache_view.h"

namespace gb::kernels::cuda {

using KvCacheView = kernels::KvCacheView;

}  // namespace gb::kernels::cuda

// The cache of quantized models that gridbench-job keeps across jobs: a model
// quantized once in a weight format is saved packed
// (engine/weights/hf/quantized_checkpoint.h) under a key of (the model's content
// digest, the format's row), and every later job on that (model, format) loads the
// saved one as stored instead of quantizing again.
//
// Where: the directory GRIDBENCH_QUANT_CACHE names (the worker daemon sets it to
// WORK_DIR/quant-cache or its --cache-dir for its children, `gridbench run` to
// OUT_DIR/quant-cache); no cache when unset. Each entry is DIR/KEY/, a saved model.
// Safe with several job processes at once: an entry is written to DIR/KEY.tmp-PID-N/
// and renamed into place (the first rename wins, the others drop theirs), and an
// evicted entry is renamed away before it is removed. Size-bounded (the
// GRIDBENCH_QUANT_CACHE_GIB limit, 20 GiB by default): after an insert, the least
// recently used entries go until the rest fit; using an entry touches it.
//
// Not here: which jobs ask (engine/measure/engine_session.cc), the digest
// (engine/jobs/job_inputs.h input_digest).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "engine/spec/formats.h"

namespace gb::engine {

inline constexpr const char* kQuantCacheEnv = "GRIDBENCH_QUANT_CACHE";
inline constexpr const char* kQuantCacheGibEnv = "GRIDBENCH_QUANT_CACHE_GIB";
inline constexpr double kDefaultQuantCacheGib = 20;

struct QuantCacheOptions {
  std::string dir;  // empty: no cache
  uint64_t max_bytes = static_cast<uint64_t>(kDefaultQuantCacheGib * (1 << 30));
};

// The options the environment gives (GRIDBENCH_QUANT_CACHE, GRIDBENCH_QUANT_CACHE_GIB);
// an unreadable size is an error naming the variable.
Result<QuantCacheOptions> quant_cache_options_from_env();

// Whether a (model, format) goes through the cache: an hf:DIR model in a format
// that packs (not f32/f16/bf16, not fake, no activation quantization).
bool quant_cacheable(const std::string& model_ref, const WeightFormat& format);

// The key: 16 hex digits of SHA-256 over the model's digest, the format's row (name,
// codec, scale layout, group, per tensor, double quantization, 16-bit head) and the
// layout version.
std::string quant_cache_key(const std::string& model_digest, const WeightFormat& format);

struct CachedModel {
  std::string model_ref;  // hf:DIR/KEY
  std::string key;
  bool hit = false;       // false: quantized and written now
};

// The saved model of (model_ref, format), written first when the cache lacks it.
Result<CachedModel> cached_quantized_model(const QuantCacheOptions& options, const std::string& model_ref,
                                           const std::string& model_digest, const WeightFormat& format);

// Total bytes of the cache's entries (for tests and logs).
uint64_t quant_cache_bytes(const std::string& dir);

}  // namespace gb::engine

// The KV cache: per sequence, per layer, keys and values of every cached token in
// the backend's memory, in f32, f16 or bf16.
//
// Two policies:
//  - full: every token stays. Keys are stored after RoPE, at their absolute
//    positions. Storage is either allocated up front (static, `capacity` slots)
//    or grows on demand (doubling, from 256 slots).
//  - streaming (StreamingLLM, "+sink{S}+win{W}"): the first S tokens and the last
//    W stay; the ones between are evicted before new tokens arrive. As in the
//    mit-han-lab implementation, keys are cached before RoPE and positions are
//    re-assigned inside the cache: the token in slot s is rotated (and, for
//    GPT-2, position-embedded) as position s, so no position ever exceeds S + W.
//    GPT-2's learned positions are added to the input, so there a cached token
//    keeps the position of the slot it was written to. Storage is static, S + W
//    slots.
//
// Bytes are accounted exactly: allocated_bytes() is what the buffers hold (the
// backend's allocations), used_bytes() what the cached tokens take.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/backend/backend.h"
#include "engine/spec/formats.h"
#include "engine/spec/model_config.h"

namespace gb::engine {

struct KvCacheOptions {
  KvElement element = KvElement::kF32;
  int64_t sink_tokens = 0;
  int64_t window_tokens = 0;  // > 0: streaming policy
  // Full policy: slots per sequence allocated up front; 0 = grow on demand.
  int64_t capacity = 0;
  // Full policy: no sequence may exceed this many tokens (0 = no limit beyond
  // memory). The model sets it from max_position_embeddings for GPT-2.
  int64_t max_tokens = 0;
};

// Reads a KV format (engine/spec/formats.h) into options; errors for elements the CPU
// cache does not store yet.
Result<KvCacheOptions> kv_cache_options(const KvFormat& format);
// The same from a KV format name ("f16", "bf16+sink4+win252").
Result<KvCacheOptions> kv_cache_options(std::string_view name);

class KvCache {
 public:
  static Result<std::unique_ptr<KvCache>> create(Backend& backend, const ModelConfig& config,
                                                 const KvCacheOptions& options, int sequences);

  const KvCacheOptions& options() const { return options_; }
  bool streaming() const { return options_.window_tokens > 0; }
  int sequences() const { return static_cast<int>(seqs_.size()); }

  // Tokens in the cache now, and tokens the sequence has seen (its next absolute position).
  int64_t length(int seq) const { return seqs_[seq].len; }
  int64_t seen(int seq) const { return seqs_[seq].seen; }
  // The most new tokens one forward step may add to `seq` (streaming: the window).
  int64_t max_step(int seq) const;

  // Makes room for n new tokens of `seq`: evicts (streaming) or grows (full).
  // Returns the first slot they go to. Errors: over capacity or max_tokens.
  Result<int64_t> prepare(int seq, int64_t n);
  // Records that n tokens were written at the slot prepare() returned.
  void commit(int seq, int64_t n);
  // Forgets a sequence's tokens (keeps its memory).
  void reset(int seq);

  // A layer's view for attention; `extra` more slots than length() are visible
  // (the tokens being written by the current step).
  KvLayerView layer(int seq, int64_t layer, int64_t extra = 0);

  uint64_t allocated_bytes() const;
  uint64_t used_bytes() const;
  // Bytes one token takes in every layer: 2 x layers x kv_heads x head_dim x element size.
  static uint64_t bytes_per_token(const ModelConfig& config, KvElement element);

 private:
  KvCache(Backend& backend, const ModelConfig& config, const KvCacheOptions& options)
      : backend_(backend), options_(options), layers_(config.num_layers),
        width_(config.num_kv_heads * config.head_dim) {}
  struct Seq {
    std::unique_ptr<Buffer> buf;  // [layers][k|v][capacity][width]
    int64_t capacity = 0;
    int64_t len = 0;
    int64_t seen = 0;
  };
  size_t slot_bytes() const { return static_cast<size_t>(width_) * kv_element_size(options_.element); }
  size_t plane_offset(const Seq& s, int64_t layer, int which) const {
    return (static_cast<size_t>(layer) * 2 + which) * static_cast<size_t>(s.capacity) * slot_bytes();
  }
  Status resize(Seq& s, int64_t capacity);

  Backend& backend_;
  KvCacheOptions options_;
  int64_t layers_;
  int64_t width_;
  std::vector<Seq> seqs_;
};

}  // namespace gb::engine

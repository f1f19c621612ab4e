// The KV cache: per sequence, per layer, keys and values of every cached token in
// the backend's memory, in f32, f16 or bf16, or packed in a quantized KV element
// (int8, fp8, int4, int4-g32 with per-token scales; int8-calib with a calibration's
// per-layer scales): each slot holds a token's codes and scales together
// (kernels/codecs/kv_quant.h), so the policies below move slots the same way for
// every element.
//
// Two policies:
//  - full: every token stays. Keys are stored after RoPE, at their absolute
//    positions. Storage is either allocated up front (static, `capacity` slots,
//    one contiguous buffer) or grows on demand:
//     - paged (the default): pages of `page_tokens` slots, each holding every
//       layer's keys and values of its slots, added as the sequence reaches them;
//       nothing is copied and the cache never holds more than one page beyond its
//       tokens. The kernels find a slot's page through a table in the backend's
//       memory (kernels/codecs/kv_cache_view.h).
//     - doubling: one contiguous buffer, from 256 slots, reallocated at twice the
//       size and copied whenever it is full, the old buffer live while it is
//       copied, as Hugging Face's dynamic cache grows (the "dynamic" allocation
//       that reference 003 section 6.3.10 compares with the static one).
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
// backend's allocations, an int8-calib cache's scale tables and a paged cache's page
// tables included), used_bytes() what the cached tokens take (their scales included).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/backend/backend.h"
#include "engine/kv/kv_calibration.h"
#include "engine/spec/formats.h"
#include "engine/spec/model_config.h"

namespace gb::engine {

// How a full cache without a static capacity grows (above).
enum class KvGrowth : uint8_t { kPaged, kDoubling };

struct KvCacheOptions {
  KvElement element = KvElement::kF32;
  int64_t sink_tokens = 0;
  int64_t window_tokens = 0;  // > 0: streaming policy
  // Full policy: slots per sequence allocated up front; 0 = grow on demand.
  int64_t capacity = 0;
  // Full policy, growing on demand: in pages of page_tokens slots (a power of two)
  // or by doubling one buffer.
  KvGrowth growth = KvGrowth::kPaged;
  int64_t page_tokens = 256;
  // Full policy: no sequence may exceed this many tokens (0 = no limit beyond
  // memory). The model sets it from max_position_embeddings for GPT-2.
  int64_t max_tokens = 0;
  // int8-calib: the calibration its scales come from (engine/kv/kv_calibration.h).
  std::shared_ptr<const KvCalibration> calibration;
};

// Reads a KV format (engine/spec/formats.h) into options.
Result<KvCacheOptions> kv_cache_options(const KvFormat& format);
// The same from a KV format name ("f16", "int8+sink4+win252") and, for int8-calib,
// the calibration (required there, refused for other elements): a file's path, or
// the calibration's JSON itself (text starting with '{': what a runner puts in
// place of a grid's "job:HASH" reference to a kv_calibrate job).
Result<KvCacheOptions> kv_cache_options(std::string_view name, const std::string& calibration_file = "");

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
  // Forgets a sequence's tokens after its first n, so that another continuation of
  // those n can follow (a shared prompt's keys and values reused). False, and
  // nothing changed, when n exceeds length() or a streaming cache has evicted
  // tokens (its slots no longer hold the first positions).
  bool truncate(int seq, int64_t n);

  // A layer's view for attention; `extra` more slots than length() are visible
  // (the tokens being written by the current step).
  KvLayerView layer(int seq, int64_t layer, int64_t extra = 0);
  // The same view bound to every slot allocated (len: the slots the sequence's
  // storage holds now), for a step recorded once and launched again
  // (Backend::RecordedStep), whose kernels read how many slots each row sees from
  // its visible length alone. Valid while layout_generation() is unchanged.
  KvLayerView layer_bound(int seq, int64_t layer);
  // Changes whenever any sequence's storage moves or grows (a page or a page table
  // added, a contiguous buffer reallocated): what a bound view's validity rests on.
  // Unique in the process: no two caches, alive or freed, share a value.
  uint64_t layout_generation() const { return layout_generation_; }

  // An f32 cache's keys (which 0) or values (1) of `seq` in `layer`, copied to
  // the host: [length(seq)][kv_heads * head_dim], as stored (keys rotated in a
  // full cache, unrotated in a streaming one). What kv_calibrate measures.
  Result<std::vector<float>> read_plane_f32(int seq, int64_t layer, int which);

  uint64_t allocated_bytes() const;
  uint64_t used_bytes() const;
  // Of allocated_bytes(), what a paged cache's page tables take (8 bytes an entry,
  // the tables grown by doubling from 8 entries); 0 for every other cache.
  uint64_t page_table_bytes() const;
  // Whether this cache grows page by page.
  bool paged() const { return !streaming() && options_.capacity == 0 && options_.growth == KvGrowth::kPaged; }
  // Bytes one token takes in every layer: 2 x layers x the slot bytes of its
  // element (kv_heads x head_dim elements, and the scales of quantized ones).
  static uint64_t bytes_per_token(const ModelConfig& config, KvElement element);

 private:
  KvCache(Backend& backend, const ModelConfig& config, const KvCacheOptions& options)
      : backend_(backend), options_(options), layers_(config.num_layers),
        layout_{options.element, config.num_kv_heads, config.head_dim} {}
  // A sequence's storage. Contiguous caches (static, streaming, doubling) hold at
  // most one page, of `capacity` slots; a paged one holds capacity / page_tokens
  // pages and their table (host and backend copies).
  struct Seq {
    std::vector<std::unique_ptr<Buffer>> pages;  // each [layers][k|v][page slots][slot bytes]
    std::vector<uint8_t*> table_host;             // paged: pages[i]->data()
    std::unique_ptr<Buffer> table;                // paged: table_host in the backend's memory
    int64_t table_entries = 0;                    // paged: what `table` has room for
    int64_t capacity = 0;
    int64_t len = 0;
    int64_t seen = 0;
  };
  size_t slot_bytes() const { return layout_.slot_bytes(); }
  // Slots one page of `s` holds.
  int64_t page_slots(const Seq& s) const { return paged() ? options_.page_tokens : s.capacity; }
  size_t plane_offset(int64_t page_slots, int64_t layer, int which) const {
    return (static_cast<size_t>(layer) * 2 + which) * static_cast<size_t>(page_slots) * slot_bytes();
  }
  Status resize(Seq& s, int64_t capacity);  // contiguous caches
  Status add_page(Seq& s);                  // paged caches

  Backend& backend_;
  KvCacheOptions options_;
  int64_t layers_;
  kernels::KvSlotLayout layout_;
  std::vector<Seq> seqs_;
  // int8-calib: [layers][2 (k, v)][kv_heads][2 (scale, zero point)] f32.
  std::unique_ptr<Buffer> calib_;
  static uint64_t next_layout_generation();
  uint64_t layout_generation_ = next_layout_generation();
};

}  // namespace gb::engine

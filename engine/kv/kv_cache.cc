#include "engine/kv/kv_cache.h"

#include <algorithm>
#include <atomic>
#include <bit>

namespace gb::engine {

// Layout generations are unique across every cache of the process, so that a step
// recorded on a cache since freed never matches a new cache at the same address.
uint64_t KvCache::next_layout_generation() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}


Result<KvCacheOptions> kv_cache_options(const KvFormat& format) {
  KvCacheOptions o;
  o.element = format.codec;
  o.sink_tokens = format.sink_tokens;
  o.window_tokens = format.window_tokens;
  return o;
}

Result<KvCacheOptions> kv_cache_options(std::string_view name, const std::string& calibration_file) {
  Result<KvFormat> f = parse_kv_format(name);
  if (!f) return f.error();
  Result<KvCacheOptions> o = kv_cache_options(*f);
  if (!o) return o.error();
  if (f->codec == KvElement::kInt8Calib) {
    if (calibration_file.empty())
      return Error{"KV format '" + f->name + "' needs a calibration: give the kv_calibration parameter (a file "
                   "the kv_calibrate job writes)"};
    // "job:HASH" names a kv_calibrate job of the grid, which the runner that leases
    // this job replaces with the calibration itself, inline (a JSON object).
    if (calibration_file.starts_with("job:"))
      return Error{"kv_calibration " + calibration_file +
                   " names a kv_calibrate job's output, which only a runner that leases this job resolves"};
    Result<KvCalibration> c = calibration_file.starts_with("{")
                                  ? parse_kv_calibration(calibration_file, "kv_calibration (inline)")
                                  : read_kv_calibration(calibration_file);
    if (!c) return c.error();
    o->calibration = std::make_shared<const KvCalibration>(std::move(*c));
  } else if (!calibration_file.empty()) {
    return Error{"kv_calibration " + calibration_file.substr(0, 80) + " is for the int8-calib KV format, not '" + f->name + "'"};
  }
  return o;
}

uint64_t KvCache::bytes_per_token(const ModelConfig& c, KvElement e) {
  const kernels::KvSlotLayout layout{e, c.num_kv_heads, c.head_dim};
  return 2ull * static_cast<uint64_t>(c.num_layers) * layout.slot_bytes();
}

Result<std::unique_ptr<KvCache>> KvCache::create(Backend& backend, const ModelConfig& config,
                                                 const KvCacheOptions& options, int sequences) {
  if (sequences < 1) return Error{"a KV cache needs at least one sequence"};
  if (options.window_tokens < 0 || options.sink_tokens < 0 || options.capacity < 0)
    return Error{"KV cache sizes must be non-negative"};
  if (options.page_tokens < 1 || options.page_tokens > (int64_t{1} << 30) ||
      !std::has_single_bit(static_cast<uint64_t>(options.page_tokens)))
    return Error{"KV cache pages of " + std::to_string(options.page_tokens) +
                 " tokens: expected a power of two from 1 to 2^30"};
  std::unique_ptr<KvCache> c(new KvCache(backend, config, options));
  const MemoryUseScope kv_memory(backend, MemoryUse::kKvCache);
  if (options.element == KvElement::kInt8Calib) {
    const KvCalibration* cal = options.calibration.get();
    if (cal == nullptr) return Error{"KV format int8-calib needs a calibration (the kv_calibration parameter)"};
    if (cal->num_layers != config.num_layers || cal->num_kv_heads != config.num_kv_heads)
      return Error{cal->source + ": calibrated for " + std::to_string(cal->num_layers) + " layers x " +
                   std::to_string(cal->num_kv_heads) + " KV heads, the model has " +
                   std::to_string(config.num_layers) + " x " + std::to_string(config.num_kv_heads)};
    const bool unrotated = options.window_tokens > 0;
    if (!cal->keys.empty() && (cal->keys == "unrotated") != unrotated)
      return Error{cal->source + ": calibrates " + cal->keys + " keys, but a " +
                   (unrotated ? "streaming cache stores them unrotated" : "full cache stores them rotated")};
    std::vector<float> table;
    for (int64_t l = 0; l < config.num_layers; ++l) {
      const std::vector<float> t = cal->scales(l);
      table.insert(table.end(), t.begin(), t.end());
    }
    Result<std::unique_ptr<Buffer>> buf = backend.alloc(table.size() * sizeof(float));
    if (!buf) return Error{"KV cache: " + buf.error().message};
    backend.upload(**buf, 0, table.data(), table.size() * sizeof(float));
    c->calib_ = std::move(*buf);
  }
  c->seqs_.resize(static_cast<size_t>(sequences));
  const int64_t initial = options.window_tokens > 0 ? options.sink_tokens + options.window_tokens : options.capacity;
  if (initial > 0)
    for (Seq& s : c->seqs_)
      if (Status st = c->resize(s, initial); !st.ok()) return st.error();
  return c;
}

Status KvCache::resize(Seq& s, int64_t capacity) {
  const size_t bytes = static_cast<size_t>(layers_) * 2 * static_cast<size_t>(capacity) * slot_bytes();
  const MemoryUseScope kv_memory(backend_, MemoryUse::kKvCache);
  Result<std::unique_ptr<Buffer>> buf = backend_.alloc(bytes);
  if (!buf) return Error{"KV cache: " + buf.error().message};
  if (!s.pages.empty() && s.len > 0)
    for (int64_t l = 0; l < layers_; ++l)
      for (int which = 0; which < 2; ++which)
        backend_.copy(**buf, plane_offset(capacity, l, which), *s.pages[0], plane_offset(s.capacity, l, which),
                      static_cast<size_t>(s.len) * slot_bytes());
  s.pages.clear();
  s.pages.push_back(std::move(*buf));
  layout_generation_ = next_layout_generation();
  s.capacity = capacity;
  return Status();
}

Status KvCache::add_page(Seq& s) {
  const int64_t P = options_.page_tokens;
  const MemoryUseScope kv_memory(backend_, MemoryUse::kKvCache);
  Result<std::unique_ptr<Buffer>> page =
      backend_.alloc(static_cast<size_t>(layers_) * 2 * static_cast<size_t>(P) * slot_bytes());
  if (!page) return Error{"KV cache: " + page.error().message};
  const int64_t entries = static_cast<int64_t>(s.table_host.size()) + 1;
  uint8_t* const base = static_cast<uint8_t*>((*page)->data());
  if (entries > s.table_entries) {
    // A larger table: the old one's entries and the new page's, uploaded whole.
    const int64_t room = std::max<int64_t>(8, 2 * s.table_entries);
    Result<std::unique_ptr<Buffer>> table = backend_.alloc(static_cast<size_t>(room) * sizeof(uint8_t*));
    if (!table) return Error{"KV cache: " + table.error().message};
    s.table_host.push_back(base);
    backend_.upload(**table, 0, s.table_host.data(), s.table_host.size() * sizeof(uint8_t*));
    s.table = std::move(*table);
    s.table_entries = room;
  } else {
    s.table_host.push_back(base);
    backend_.upload(*s.table, (s.table_host.size() - 1) * sizeof(uint8_t*), &s.table_host.back(), sizeof(uint8_t*));
  }
  s.pages.push_back(std::move(*page));
  layout_generation_ = next_layout_generation();
  s.capacity += P;
  return Status();
}

int64_t KvCache::max_step(int seq) const {
  (void)seq;
  if (streaming()) return options_.window_tokens;
  return INT64_MAX;
}

Result<int64_t> KvCache::prepare(int seq, int64_t n) {
  Seq& s = seqs_[seq];
  if (streaming()) {
    const int64_t S = options_.sink_tokens, W = options_.window_tokens;
    if (n > W) return Error{"KV cache: " + std::to_string(n) + " new tokens exceed the streaming window of " +
                            std::to_string(W)};
    if (s.len + n > S + W) {
      // Keep the sinks and the most recent W - n tokens; slide those down.
      const int64_t keep = W - n;
      const int64_t from = s.len - keep;
      for (int64_t l = 0; l < layers_; ++l)
        for (int which = 0; which < 2; ++which) {
          const size_t base = plane_offset(s.capacity, l, which);
          backend_.copy(*s.pages[0], base + static_cast<size_t>(S) * slot_bytes(), *s.pages[0],
                        base + static_cast<size_t>(from) * slot_bytes(), static_cast<size_t>(keep) * slot_bytes());
        }
      s.len = S + keep;
    }
    return s.len;
  }
  const int64_t need = s.len + n;
  if (options_.max_tokens > 0 && need > options_.max_tokens)
    return Error{"context of " + std::to_string(need) + " tokens exceeds the model's limit of " +
                 std::to_string(options_.max_tokens)};
  if (need > s.capacity) {
    if (options_.capacity > 0)
      return Error{"KV cache: " + std::to_string(need) + " tokens exceed the static capacity of " +
                   std::to_string(options_.capacity)};
    if (paged()) {
      while (s.capacity < need)
        if (Status st = add_page(s); !st.ok()) return st.error();
      return s.len;
    }
    int64_t cap = std::max<int64_t>(s.capacity, 256);
    while (cap < need) cap *= 2;
    if (options_.max_tokens > 0) cap = std::min(cap, std::max(options_.max_tokens, need));
    if (Status st = resize(s, cap); !st.ok()) return st.error();
  }
  return s.len;
}

void KvCache::commit(int seq, int64_t n) {
  seqs_[seq].len += n;
  seqs_[seq].seen += n;
}

void KvCache::reset(int seq) {
  seqs_[seq].len = 0;
  seqs_[seq].seen = 0;
}

bool KvCache::truncate(int seq, int64_t n) {
  Seq& s = seqs_[seq];
  // Slot i holds the token at position i only while nothing was evicted.
  if (n < 0 || n > s.len || s.len != s.seen) return false;
  s.len = n;
  s.seen = n;
  return true;
}

KvLayerView KvCache::layer(int seq, int64_t layer, int64_t extra) {
  Seq& s = seqs_[seq];
  KvLayerView v;
  const int64_t P = page_slots(s);
  if (paged()) {
    v.pages = s.table ? static_cast<uint8_t* const*>(s.table->data()) : nullptr;
    v.page_shift = std::countr_zero(static_cast<uint64_t>(P));
    v.k_offset = static_cast<int64_t>(plane_offset(P, layer, 0));
    v.v_offset = static_cast<int64_t>(plane_offset(P, layer, 1));
  } else if (!s.pages.empty()) {
    uint8_t* base = static_cast<uint8_t*>(s.pages[0]->data());
    v.k = base + plane_offset(P, layer, 0);
    v.v = base + plane_offset(P, layer, 1);
  }
  v.len = s.len + extra;
  v.element = options_.element;
  v.keys_unrotated = streaming();
  v.kv_heads = layout_.heads;
  v.head_dim = layout_.head_dim;
  if (calib_) {
    const float* t = calib_->f32() + layer * 4 * layout_.heads;
    v.k_calib = t;
    v.v_calib = t + 2 * layout_.heads;
  }
  return v;
}

KvLayerView KvCache::layer_bound(int seq, int64_t layer) {
  KvLayerView v = this->layer(seq, layer);
  v.len = seqs_[seq].capacity;
  return v;
}

Result<std::vector<float>> KvCache::read_plane_f32(int seq, int64_t layer, int which) {
  if (options_.element != KvElement::kF32) return Error{"KV cache: only an f32 cache's rows can be read back"};
  if (seq < 0 || seq >= sequences() || layer < 0 || layer >= layers_ || (which != 0 && which != 1))
    return Error{"KV cache: no plane " + std::to_string(which) + " of layer " + std::to_string(layer) +
                 " of sequence " + std::to_string(seq)};
  Seq& s = seqs_[seq];
  const size_t width = static_cast<size_t>(layout_.heads * layout_.head_dim);
  std::vector<float> out(static_cast<size_t>(s.len) * width);
  const int64_t P = page_slots(s);
  for (int64_t t = 0; t < s.len;) {
    const int64_t page = t / P, within = t % P, n = std::min(P - within, s.len - t);
    backend_.download(*s.pages[static_cast<size_t>(page)],
                      plane_offset(P, layer, which) + static_cast<size_t>(within) * slot_bytes(),
                      out.data() + static_cast<size_t>(t) * width, static_cast<size_t>(n) * slot_bytes());
    t += n;
  }
  return out;
}

uint64_t KvCache::allocated_bytes() const {
  uint64_t b = 0;
  for (const Seq& s : seqs_)
    for (const std::unique_ptr<Buffer>& p : s.pages) b += p->size();
  return b + page_table_bytes() + (calib_ ? calib_->size() : 0);
}

uint64_t KvCache::page_table_bytes() const {
  uint64_t b = 0;
  for (const Seq& s : seqs_) b += s.table ? s.table->size() : 0;
  return b;
}

uint64_t KvCache::used_bytes() const {
  uint64_t b = 0;
  for (const Seq& s : seqs_) b += static_cast<uint64_t>(s.len) * 2 * layers_ * slot_bytes();
  return b;
}

}  // namespace gb::engine

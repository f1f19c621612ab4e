#include "engine/model/kv_cache.h"

#include <algorithm>

namespace gb::engine {

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
  if (s.buf && s.len > 0) {
    Seq grown;
    grown.capacity = capacity;
    for (int64_t l = 0; l < layers_; ++l)
      for (int which = 0; which < 2; ++which)
        backend_.copy(**buf, plane_offset(grown, l, which), *s.buf, plane_offset(s, l, which),
                      static_cast<size_t>(s.len) * slot_bytes());
  }
  s.buf = std::move(*buf);
  s.capacity = capacity;
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
          const size_t base = plane_offset(s, l, which);
          backend_.copy(*s.buf, base + static_cast<size_t>(S) * slot_bytes(), *s.buf,
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
  uint8_t* base = static_cast<uint8_t*>(s.buf->data());
  v.k = base + plane_offset(s, layer, 0);
  v.v = base + plane_offset(s, layer, 1);
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

Result<std::vector<float>> KvCache::read_plane_f32(int seq, int64_t layer, int which) {
  if (options_.element != KvElement::kF32) return Error{"KV cache: only an f32 cache's rows can be read back"};
  if (seq < 0 || seq >= sequences() || layer < 0 || layer >= layers_ || (which != 0 && which != 1))
    return Error{"KV cache: no plane " + std::to_string(which) + " of layer " + std::to_string(layer) +
                 " of sequence " + std::to_string(seq)};
  Seq& s = seqs_[seq];
  std::vector<float> out(static_cast<size_t>(s.len) * static_cast<size_t>(layout_.heads * layout_.head_dim));
  if (!out.empty()) backend_.download(*s.buf, plane_offset(s, layer, which), out.data(), out.size() * sizeof(float));
  return out;
}

uint64_t KvCache::allocated_bytes() const {
  uint64_t b = 0;
  for (const Seq& s : seqs_) b += s.buf ? s.buf->size() : 0;
  return b + (calib_ ? calib_->size() : 0);
}

uint64_t KvCache::used_bytes() const {
  uint64_t b = 0;
  for (const Seq& s : seqs_) b += static_cast<uint64_t>(s.len) * 2 * layers_ * slot_bytes();
  return b;
}

}  // namespace gb::engine

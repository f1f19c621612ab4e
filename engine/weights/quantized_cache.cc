// The quantized-model cache (engine/weights/quantized_cache.h).
#include "engine/weights/quantized_cache.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "common/json_util.h"
#include "engine/weights/hf/quantized_checkpoint.h"
#include "engine/weights/weight_source.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;

constexpr auto kStaleTemp = std::chrono::hours(1);  // a temporary entry left by a killed job

uint64_t dir_bytes(const fs::path& p) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file(ec)) n += it->file_size(ec);
  return n;
}

bool is_key(const std::string& name) {
  return name.size() == 16 && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string unique_suffix() {
  static std::atomic<int> n{0};
  return std::to_string(::getpid()) + "-" + std::to_string(n++);
}

// Removes `p` so that no reader opens it half-removed: renamed away first.
void remove_entry(const fs::path& p) {
  std::error_code ec;
  const fs::path gone = p.string() + ".evict-" + unique_suffix();
  fs::rename(p, gone, ec);
  if (!ec) fs::remove_all(gone, ec);
}

// Least recently used entries out until the rest fit in max_bytes; `keep` stays.
void evict(const QuantCacheOptions& o, const std::string& keep) {
  struct Entry {
    fs::path path;
    fs::file_time_type used;
    uint64_t bytes;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (const auto& d : fs::directory_iterator(o.dir, ec)) {
    if (!d.is_directory(ec)) continue;
    const std::string name = d.path().filename().string();
    const fs::file_time_type t = fs::last_write_time(d.path(), ec);
    if (ec) continue;
    if (!is_key(name)) {
      if (name.find(".tmp-") != std::string::npos && now - t > kStaleTemp) fs::remove_all(d.path(), ec);
      continue;
    }
    entries.push_back({d.path(), t, dir_bytes(d.path())});
    total += entries.back().bytes;
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.used < b.used; });
  for (const Entry& e : entries) {
    if (total <= o.max_bytes) break;
    if (e.path.filename() == keep) continue;
    remove_entry(e.path);
    total -= e.bytes;
  }
}

}  // namespace

Result<QuantCacheOptions> quant_cache_options_from_env() {
  QuantCacheOptions o;
  if (const char* d = std::getenv(kQuantCacheEnv); d != nullptr) o.dir = d;
  if (const char* g = std::getenv(kQuantCacheGibEnv); g != nullptr && *g != '\0') {
    char* end = nullptr;
    const double gib = std::strtod(g, &end);
    if (end == g || *end != '\0' || !(gib >= 0))
      return Error{std::string(kQuantCacheGibEnv) + "='" + g + "': expected a size in GiB (a number >= 0)"};
    o.max_bytes = static_cast<uint64_t>(gib * (1ull << 30));
  }
  return o;
}

bool quant_cacheable(const std::string& model_ref, const WeightFormat& f) {
  const bool plain = f.codec == kernels::WeightCodec::kF32 || f.codec == kernels::WeightCodec::kF16 ||
                     f.codec == kernels::WeightCodec::kBF16;
  return model_ref.rfind("hf:", 0) == 0 && !plain && !f.fake && f.activations == "f32";
}

std::string quant_cache_key(const std::string& model_digest, const WeightFormat& f) {
  return content_hash(Json{{"layout", kQuantLayoutVersion},
                           {"model", model_digest},
                           {"format",
                            {{"name", f.name},
                             {"codec", kernels::codec_name(f.codec)},
                             {"scale_layout", static_cast<int>(f.codec_layout)},
                             {"group", f.block_size},
                             {"per_tensor", f.per_tensor},
                             {"double_quant", f.double_quant},
                             {"head_in_16_bits", f.head_in_16_bits}}}});
}

uint64_t quant_cache_bytes(const std::string& dir) { return dir_bytes(dir); }

Result<CachedModel> cached_quantized_model(const QuantCacheOptions& o, const std::string& model_ref,
                                           const std::string& model_digest, const WeightFormat& format) {
  CachedModel c;
  c.key = quant_cache_key(model_digest, format);
  const fs::path entry = fs::path(o.dir) / c.key;
  c.model_ref = "hf:" + entry.string();
  std::error_code ec;
  if (fs::exists(entry / "model.safetensors", ec)) {
    fs::last_write_time(entry, fs::file_time_type::clock::now(), ec);  // used now (LRU)
    c.hit = true;
    return c;
  }
  Result<ModelRef> ref = parse_model_ref(model_ref);
  if (!ref) return ref.error();
  if (ref->kind != ModelRef::Kind::kHf) return Error{model_ref + ": only hf:DIR models are cached"};
  fs::create_directories(o.dir, ec);
  if (ec) return Error{o.dir + ": cannot create the quantized-model cache: " + ec.message()};
  Result<std::unique_ptr<WeightSource>> w = open_weights(model_ref);
  if (!w) return w.error();
  const fs::path tmp = fs::path(o.dir) / (c.key + ".tmp-" + unique_suffix());
  if (Status s = write_quantized_checkpoint(**w, ref->hf_dir, format, {model_ref, model_digest}, tmp.string());
      !s.ok()) {
    fs::remove_all(tmp, ec);
    return s.error();
  }
  fs::rename(tmp, entry, ec);
  if (ec) {  // another job wrote it first: use theirs
    fs::remove_all(tmp, ec);
    if (!fs::exists(entry / "model.safetensors", ec))
      return Error{entry.string() + ": cannot move the quantized model into the cache"};
    return c;
  }
  evict(o, c.key);
  return c;
}

}  // namespace gb::engine

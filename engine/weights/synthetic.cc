// Synthetic models: seeded, lazily generated F32 weights (engine/weights/synthetic.h).
#include "engine/weights/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <thread>

#include "kernels/codecs/synthetic_value.h"

namespace gb::engine {
namespace {

// The per-element draw is shared with the device (kernels/codecs/synthetic_value.h).
using kernels::synthetic_element;
using kernels::synthetic_mix64;

inline uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

void fill_range(uint64_t key, float mean, float stddev, uint64_t begin, uint64_t n, float* out) {
  const double scale = kernels::synthetic_scale(stddev);
  for (uint64_t j = 0; j < n; ++j) out[j] = synthetic_element(key, mean, scale, begin + j);
}

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// The name of the untied output head of c's family.
std::string head_name(const ModelConfig& c) {
  ModelConfig untied = c;
  untied.tie_embeddings = false;
  return expected_hf_tensors(untied, "transformer.").back().name;
}

// Whether `n` elements of 4 bytes can be counted and allocated without overflow.
constexpr uint64_t kMaxElements = (uint64_t{1} << 62) / 4;

}  // namespace

std::string_view synthetic_init_kind_name(SyntheticInit::Kind k) {
  switch (k) {
    case SyntheticInit::Kind::kEmbedding: return "embedding";
    case SyntheticInit::Kind::kPositions: return "positions";
    case SyntheticInit::Kind::kInputProjection: return "input projection";
    case SyntheticInit::Kind::kOutputProjection: return "output projection";
    case SyntheticInit::Kind::kNormWeight: return "norm weight";
    case SyntheticInit::Kind::kBias: return "bias";
  }
  return "?";
}

SyntheticInit synthetic_init(const ModelConfig& c, const ExpectedTensor& t) {
  using K = SyntheticInit::Kind;
  const std::string_view name = t.name;
  const double H = static_cast<double>(std::max<int64_t>(c.hidden_size, 1));
  if (name.ends_with(".bias")) return {K::kBias, 0.0f, 0.02f};
  // Norms: RMSNorm / LayerNorm weights (input_layernorm, post_attention_layernorm,
  // model.norm, q_norm/k_norm, final_layer_norm, ln_1/ln_2/ln_f).
  if (t.shape.size() == 1 && (contains(name, "norm") || contains(name, ".ln_"))) return {K::kNormWeight, 1.0f, 0.02f};
  if (name.ends_with("wpe.weight")) return {K::kPositions, 0.0f, static_cast<float>(0.5 / std::sqrt(H))};
  if (contains(name, "embed") || name.ends_with("wte.weight") || name == "lm_head.weight")
    return {K::kEmbedding, 0.0f, static_cast<float>(2.0 / std::sqrt(H))};
  // Projections. GPT-2's Conv1D weights are [in, out], everything else [out, in].
  const bool conv1d = c.family == Family::kGpt2;
  const int64_t fan_in = t.shape.size() == 2 ? (conv1d ? t.shape[0] : t.shape[1]) : 1;
  const bool output = contains(name, "o_proj") || contains(name, "down_proj") || contains(name, "attention.dense.") ||
                      contains(name, "dense_4h_to_h") || contains(name, "c_proj");
  double sd = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(fan_in, 1)));
  if (output) sd /= std::sqrt(2.0 * static_cast<double>(std::max<int64_t>(c.num_layers, 1)));
  return {output ? K::kOutputProjection : K::kInputProjection, 0.0f, static_cast<float>(sd)};
}

uint64_t synthetic_tensor_key(uint64_t seed, std::string_view name) {
  return synthetic_mix64(synthetic_mix64(seed ^ 0x5ee0c0de5ee0c0deull) ^ fnv1a64(name));
}

float synthetic_standard_value(uint64_t key, uint64_t i) {
  return static_cast<float>(kernels::synthetic_irwin_hall_inv_std() *
                            static_cast<double>(kernels::synthetic_irwin_hall_centered(
                                synthetic_mix64(key + (i + 1) * kernels::kSyntheticGolden))));
}

void synthetic_fill(uint64_t key, float mean, float stddev, uint64_t begin, uint64_t n, float* out, unsigned threads) {
  constexpr uint64_t kMinPerThread = uint64_t{1} << 18;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const uint64_t by_size = std::max<uint64_t>(1, n / kMinPerThread);
  const unsigned t = static_cast<unsigned>(std::min<uint64_t>({threads, by_size, 64}));
  if (t <= 1) {
    fill_range(key, mean, stddev, begin, n, out);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(t);
  const uint64_t chunk = (n + t - 1) / t;
  for (unsigned k = 0; k < t; ++k) {
    const uint64_t a = k * chunk, b = std::min(n, a + chunk);
    if (a >= b) break;
    pool.emplace_back([=] { fill_range(key, mean, stddev, begin + a, b - a, out + a); });
  }
  for (std::thread& th : pool) th.join();
}

void SyntheticWeights::FreeDeleter::operator()(float* p) const { std::free(p); }

Result<std::unique_ptr<SyntheticWeights>> SyntheticWeights::open(const ModelConfig& config, uint64_t seed) {
  const std::string where = "synthetic model '" + config.name + "'";
  auto positive = [&](const char* field, int64_t v) -> Status {
    if (v <= 0) return Error{where + ": " + field + " must be positive, got " + std::to_string(v)};
    return {};
  };
  GB_RETURN_IF_ERROR(positive("vocab_size", config.vocab_size));
  GB_RETURN_IF_ERROR(positive("hidden_size", config.hidden_size));
  GB_RETURN_IF_ERROR(positive("num_layers", config.num_layers));
  GB_RETURN_IF_ERROR(positive("intermediate_size", config.intermediate_size));
  GB_RETURN_IF_ERROR(positive("num_heads", config.num_heads));
  GB_RETURN_IF_ERROR(positive("num_kv_heads", config.num_kv_heads));
  if (config.head_dim < 0) return Error{where + ": head_dim must not be negative"};
  if (config.head_dim == 0 && config.hidden_size % config.num_heads != 0)
    return Error{where + ": hidden_size " + std::to_string(config.hidden_size) + " is not a multiple of num_heads " +
                 std::to_string(config.num_heads) + " (and no head_dim is given)"};
  if (config.num_heads % config.num_kv_heads != 0)
    return Error{where + ": num_heads " + std::to_string(config.num_heads) + " is not a multiple of num_kv_heads " +
                 std::to_string(config.num_kv_heads)};
  if (config.learned_positions || config.family == Family::kGpt2)
    GB_RETURN_IF_ERROR(positive("max_position_embeddings", config.max_position_embeddings));
  // Every dimension below 2^31 keeps products of two in int64 range.
  for (int64_t d : {config.vocab_size, config.hidden_size, config.num_layers, config.intermediate_size,
                    config.num_heads, config.head_dim, config.max_position_embeddings})
    if (d >= (int64_t{1} << 31)) return Error{where + ": a dimension of " + std::to_string(d) + " is too large"};

  std::unique_ptr<SyntheticWeights> w(new SyntheticWeights());
  w->config_ = config;
  w->seed_ = seed;
  w->parameters_ = expected_hf_tensors(config, "transformer.");
  uint64_t elements = 0;
  for (size_t i = 0; i < w->parameters_.size(); ++i) {
    const ExpectedTensor& t = w->parameters_[i];
    uint64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 0 || (d > 0 && n > kMaxElements / static_cast<uint64_t>(d)))
        return Error{where + ": tensor '" + t.name + "' " + shape_string(t.shape) + " is too large"};
      n *= static_cast<uint64_t>(d);
    }
    if (elements > kMaxElements - n) return Error{where + ": the model is too large"};
    elements += n;
    w->entries_.emplace(t.name, Entry{i, synthetic_init(config, t), nullptr});
  }
  w->parameter_bytes_ = 4 * elements;
  w->embed_name_ = w->parameters_.front().name;
  if (config.tie_embeddings) w->tied_head_name_ = head_name(config);
  return w;
}

std::string SyntheticWeights::describe() const {
  std::string base = config_.name;
  if (base.starts_with("synthetic:")) base = base.substr(10);
  if (const size_t at = base.find('@'); at != std::string::npos) base = base.substr(0, at);
  return "synthetic:" + base + "@" + std::to_string(seed_);
}

std::optional<SyntheticInit> SyntheticWeights::init_of(std::string_view name) const {
  if (!tied_head_name_.empty() && name == tied_head_name_) name = embed_name_;
  auto it = entries_.find(std::string(name));
  if (it == entries_.end()) return std::nullopt;
  return it->second.init;
}

void SyntheticWeights::release_tensors() {
  for (auto& [name, e] : entries_) e.data.reset();
  generated_bytes_ = 0;
}

Result<TensorView> SyntheticWeights::tensor(std::string_view name) {
  if (!tied_head_name_.empty() && name == tied_head_name_) name = embed_name_;  // the tied head
  auto it = entries_.find(std::string(name));
  if (it == entries_.end())
    return Error{describe() + ": no tensor '" + std::string(name) + "' (not a " +
                 std::string(family_name(config_.family)) + " parameter of this config)"};
  Entry& e = it->second;
  const ExpectedTensor& t = parameters_[e.index];
  const uint64_t n = static_cast<uint64_t>(shape_numel(t.shape));
  if (!e.data) {
    // 64-byte aligned for vector kernels; aligned_alloc wants a multiple of the alignment.
    const size_t bytes = static_cast<size_t>(std::max<uint64_t>(64, (4 * n + 63) / 64 * 64));
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (p == nullptr)
      return Error{describe() + ": cannot allocate " + std::to_string(4 * n) + " bytes for tensor '" + t.name + "'"};
    e.data.reset(p);
    synthetic_fill(synthetic_tensor_key(seed_, t.name), e.init.mean, e.init.stddev, 0, n, p);
    generated_bytes_ += 4 * n;
    total_generated_bytes_ += 4 * n;
  }
  TensorView v;
  v.dtype = DType::kF32;
  v.shape = t.shape;
  v.data = e.data.get();
  return v;
}

std::optional<SyntheticDraw> SyntheticWeights::synthetic_draw(std::string_view name) const {
  if (!tied_head_name_.empty() && name == tied_head_name_) name = embed_name_;  // the tied head
  auto it = entries_.find(std::string(name));
  if (it == entries_.end()) return std::nullopt;
  const ExpectedTensor& t = parameters_[it->second.index];
  return SyntheticDraw{synthetic_tensor_key(seed_, t.name), it->second.init.mean, it->second.init.stddev, t.shape};
}

const Tokenizer* SyntheticWeights::tokenizer() const {
  std::call_once(tokenizer_once_, [this] {
    if (config_.vocab_size < 256 || config_.vocab_size > std::numeric_limits<int32_t>::max()) return;
    Result<Tokenizer> t = Tokenizer::byte_level(static_cast<int32_t>(config_.vocab_size));
    if (t) tokenizer_ = std::make_unique<Tokenizer>(std::move(t).value());
  });
  return tokenizer_.get();
}

Result<std::unique_ptr<WeightSource>> open_synthetic_weights(const ModelConfig& config, uint64_t seed) {
  Result<std::unique_ptr<SyntheticWeights>> w = SyntheticWeights::open(config, seed);
  if (!w) return w.error();
  return std::unique_ptr<WeightSource>(std::move(w).value());
}

Result<std::unique_ptr<WeightSource>> open_synthetic_weights(const std::string& model_ref) {
  Result<ModelRef> ref = parse_model_ref(model_ref);
  if (!ref) return ref.error();
  if (ref->kind != ModelRef::Kind::kSynthetic)
    return Error{"model '" + model_ref + "' is not a synthetic model (synthetic:PRESET[@SEED])"};
  const ModelConfig* preset = find_model_preset(ref->preset);
  if (preset == nullptr) return Error{"model '" + model_ref + "': unknown preset '" + ref->preset + "'"};
  ModelConfig config = *preset;
  config.name = model_ref;
  return open_synthetic_weights(config, ref->seed);
}

}  // namespace gb::engine

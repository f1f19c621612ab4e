// ModelConfig from GGUF metadata (engine/spec/gguf/gguf_config.h).
#include "engine/spec/gguf/gguf_config.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/mapped_file.h"
#include "engine/spec/model_tensors.h"

namespace gb::engine {
namespace {

constexpr const char* kArchitectures = "llama, qwen2, qwen3, gptneox, gpt2";
constexpr int64_t kMaxWidth = kGgufMaxWidth;
constexpr int64_t kMaxCount = kGgufMaxCount;

// Reads typed metadata, collecting every problem so that one message names them all.
class MetaReader {
 public:
  explicit MetaReader(const GgufHeader& h) : h_(h) {}

  // A positive integer <= limit; nullopt when missing (a problem when required).
  std::optional<int64_t> count(const std::string& key, bool required, int64_t limit = kMaxWidth) {
    const GgufValue* v = find(key, required);
    if (v == nullptr) return std::nullopt;
    const std::optional<int64_t> i = v->as_int();
    if (!i) {
      fail("metadata key '" + key + "' is " + v->type_description() + ", expected an integer");
      return std::nullopt;
    }
    if (*i < 1 || *i > limit) {
      fail("metadata key '" + key + "' = " + std::to_string(*i) + " is out of range [1, " + std::to_string(limit) +
           "]");
      return std::nullopt;
    }
    return i;
  }

  // A token id: a non-negative integer.
  std::optional<int64_t> token_id(const std::string& key) {
    const GgufValue* v = find(key, false);
    if (v == nullptr) return std::nullopt;
    const std::optional<int64_t> i = v->as_int();
    if (!i || *i < 0) {
      fail("metadata key '" + key + "' must be a non-negative integer, got " + v->type_description());
      return std::nullopt;
    }
    return i;
  }

  // A positive finite number (f32 or f64).
  std::optional<double> positive(const std::string& key, bool required) {
    const GgufValue* v = find(key, required);
    if (v == nullptr) return std::nullopt;
    const std::optional<double> d = v->as_float();
    if (!d) {
      fail("metadata key '" + key + "' is " + v->type_description() + ", expected f32 or f64");
      return std::nullopt;
    }
    if (!(*d > 0) || !std::isfinite(*d)) {
      fail("metadata key '" + key + "' must be a positive number, got " + std::to_string(*d));
      return std::nullopt;
    }
    return d;
  }

  std::optional<bool> boolean(const std::string& key) {
    const GgufValue* v = find(key, false);
    if (v == nullptr) return std::nullopt;
    if (!v->as_bool()) {
      fail("metadata key '" + key + "' is " + v->type_description() + ", expected a bool");
      return std::nullopt;
    }
    return v->as_bool();
  }

  std::optional<std::string> string(const std::string& key, bool required) {
    const GgufValue* v = find(key, required);
    if (v == nullptr) return std::nullopt;
    if (!v->as_string()) {
      fail("metadata key '" + key + "' is " + v->type_description() + ", expected a string");
      return std::nullopt;
    }
    return std::string(*v->as_string());
  }

  void fail(std::string message) { errors_.push_back(std::move(message)); }
  bool ok() const { return errors_.empty(); }
  Error error(const std::string& where) const {
    std::string m = where + ": ";
    for (size_t i = 0; i < errors_.size(); ++i) m += (i ? "; " : "") + errors_[i];
    return Error{m};
  }

 private:
  const GgufValue* find(const std::string& key, bool required) {
    const GgufValue* v = h_.find(key);
    if (v == nullptr && required) fail("missing metadata key '" + key + "'");
    return v;
  }

  const GgufHeader& h_;
  std::vector<std::string> errors_;
};

// A tensor's bytes in the parsed file.
const uint8_t* tensor_data(const GgufHeader& h, const uint8_t* file, const GgufTensorInfo& t) {
  return file + h.data_start + t.offset;
}

// Whether two stored tensors are the same type, shape and bytes.
bool same_tensor(const GgufHeader& h, const uint8_t* file, const GgufTensorInfo& a, const GgufTensorInfo& b) {
  return a.type == b.type && a.ne == b.ne && a.nbytes == b.nbytes &&
         (a.nbytes == 0 || std::memcmp(tensor_data(h, file, a), tensor_data(h, file, b), a.nbytes) == 0);
}

// llama.cpp stores Llama 3.1's rope scaling ("rope_type": "llama3") as one factor
// per frequency in rope_freqs.weight, computed by the converter from the factor,
// low_freq_factor, high_freq_factor and original_max_position_embeddings. All ones
// is no scaling. Otherwise the parameters are recovered: the factor is the largest;
// each blended factor f_i between 1 and it gives smooth_i = (1/f_i - 1/factor) /
// (1 - 1/factor) = (orig / wavelen_i - low) / (high - low), so two of them fix low
// and high once orig is chosen. The factors depend on orig / (high - low) and
// low / (high - low) only, so orig = {arch}.rope.scaling.original_context_length
// when given, else Llama 3.1's 8192, loses nothing. The recovered parameters must
// reproduce every stored factor (to 1e-4 relative), else the file is refused.
Status rope_freqs_scaling(const GgufHeader& h, const uint8_t* file, int64_t original, ModelConfig& m) {
  const GgufTensorInfo* t = h.tensor("rope_freqs.weight");
  if (t == nullptr) return Status::Ok();
  const std::string w = h.where + ": tensor 'rope_freqs.weight' ";
  const int64_t n = m.head_dim / 2;
  if (t->type != static_cast<uint32_t>(GgmlType::kF32) || t->shape.size() != 1)
    return Error{w + "must be a 1-D F32 tensor, got " + ggml_type_name(t->type) + " " + shape_string(t->shape)};
  if (t->shape[0] != n)
    return Error{w + "has " + std::to_string(t->shape[0]) + " factors, expected head_dim / 2 = " + std::to_string(n)};
  std::vector<double> f(static_cast<size_t>(n)), inv(static_cast<size_t>(n));
  const uint8_t* p = tensor_data(h, file, *t);
  double factor = 0;
  bool all_ones = true;
  for (int64_t i = 0; i < n; ++i) {
    float x;
    std::memcpy(&x, p + 4 * i, 4);
    if (!(x >= 1.0f) || !std::isfinite(x))
      return Error{w + "factor " + std::to_string(i) + " is " + std::to_string(x) + " (rope factors are >= 1)"};
    f[i] = x;
    all_ones = all_ones && x == 1.0f;
    factor = std::max(factor, f[i]);
    inv[i] = 1.0 / std::pow(m.rope_theta, static_cast<double>(2 * i) / static_cast<double>(m.head_dim));
  }
  if (all_ones) return Status::Ok();
  if (m.rope_scaling != ModelConfig::RopeScaling::kNone)
    return Error{w + "and rope.scaling.type linear both scale the rope; only one is supported"};
  const auto orig = static_cast<double>(original);
  constexpr double kTwoPi = 6.283185307179586;
  // The blended factors, strictly between 1 and the factor.
  std::vector<int64_t> blended;
  for (int64_t i = 0; i < n; ++i)
    if (f[i] > 1.0 + 1e-4 && f[i] < factor * (1.0 - 1e-4)) blended.push_back(i);
  const std::string unsupported = "holds rope factors that are not Llama 3.1-style rope scaling";
  if (blended.size() < 2) return Error{w + unsupported + " (fewer than two blended factors to recover it from)"};
  auto smooth = [&](int64_t i) { return (1.0 / f[i] - 1.0 / factor) / (1.0 - 1.0 / factor); };
  const int64_t a = blended.front(), b = blended.back();
  const double xa = orig * inv[a] / kTwoPi, xb = orig * inv[b] / kTwoPi;
  const double span = (xa - xb) / (smooth(a) - smooth(b));  // high - low
  double low = xa - smooth(a) * span, high = low + span;
  // Round-number parameters (1, 4) come back to within float error: snap them.
  auto snap = [](double v) {
    const double r = std::round(v * 1000.0) / 1000.0;
    return std::abs(r - v) <= 1e-4 * std::abs(v) ? r : v;
  };
  low = snap(low);
  high = snap(high);
  if (!(low > 0) || !(high > low) || !std::isfinite(high))
    return Error{w + unsupported + " (recovered low_freq_factor " + std::to_string(low) + ", high_freq_factor " +
                 std::to_string(high) + ")"};
  for (int64_t i = 0; i < n; ++i) {
    const double wavelen = kTwoPi / inv[i];
    double want = factor;
    if (wavelen < orig / high) {
      want = 1.0;
    } else if (wavelen <= orig / low) {
      const double s = (orig / wavelen - low) / (high - low);
      want = 1.0 / ((1.0 - s) / factor + s);
    }
    if (std::abs(want - f[i]) > 1e-4 * f[i])
      return Error{w + unsupported + " (factor " + std::to_string(i) + " is " + std::to_string(f[i]) +
                   ", the recovered llama3 scaling gives " + std::to_string(want) + ")"};
  }
  m.rope_scaling = ModelConfig::RopeScaling::kLlama3;
  m.rope_factor = factor;
  m.rope_low_freq_factor = low;
  m.rope_high_freq_factor = high;
  m.rope_original_max_positions = original;
  return Status::Ok();
}

}  // namespace

Result<ModelConfig> gguf_model_config(const GgufHeader& h, const uint8_t* file) {
  const std::string& where = h.where;
  Result<std::string> arch = h.get_string("general.architecture");
  if (!arch) return arch.error();
  ModelConfig m;
  m.name = h.where;
  if (*arch == "llama") {
    m.family = Family::kLlama;
  } else if (*arch == "qwen2") {
    m.family = Family::kQwen2;
  } else if (*arch == "qwen3") {
    m.family = Family::kQwen3;
  } else if (*arch == "gptneox") {
    m.family = Family::kGptNeoX;
  } else if (*arch == "gpt2") {
    m.family = Family::kGpt2;
  } else {
    return Error{where + ": unsupported general.architecture '" + *arch + "' (supported: " + kArchitectures + ")"};
  }
  const bool gpt2 = m.family == Family::kGpt2, neox = m.family == Family::kGptNeoX;
  const std::string a = *arch + ".";

  MetaReader r(h);
  auto hidden = r.count(a + "embedding_length", true);
  auto layers = r.count(a + "block_count", true);
  auto ffn = r.count(a + "feed_forward_length", true);
  auto heads = r.count(a + "attention.head_count", true);
  auto kv_heads = r.count(a + "attention.head_count_kv", false);
  auto key_length = r.count(a + "attention.key_length", false);
  auto value_length = r.count(a + "attention.value_length", false);
  auto context = r.count(a + "context_length", true, kMaxCount);
  auto eps = r.positive(a + (gpt2 || neox ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon"), true);
  std::optional<double> theta, scaling_factor, scale_linear;
  std::optional<int64_t> rope_dims, original_context;
  std::optional<std::string> scaling_type;
  if (!gpt2) {
    theta = r.positive(a + "rope.freq_base", false);
    rope_dims = r.count(a + "rope.dimension_count", false);
    scaling_type = r.string(a + "rope.scaling.type", false);
    scaling_factor = r.positive(a + "rope.scaling.factor", false);
    scale_linear = r.positive(a + "rope.scale_linear", false);
    original_context = r.count(a + "rope.scaling.original_context_length", false, kMaxCount);
  }
  std::optional<bool> parallel;
  if (neox) parallel = r.boolean("gptneox.use_parallel_residual");
  auto vocab_key = r.count(a + "vocab_size", false, kMaxCount);
  auto bos = r.token_id("tokenizer.ggml.bos_token_id");
  auto eos = r.token_id("tokenizer.ggml.eos_token_id");
  std::optional<uint64_t> n_tokens;
  if (const GgufValue* tokens = h.find("tokenizer.ggml.tokens")) {
    if (!tokens->is_array() || tokens->element_type() != GgufValueType::kString)
      r.fail("metadata key 'tokenizer.ggml.tokens' is " + tokens->type_description() + ", expected an array of string");
    else
      n_tokens = tokens->size();
  }
  if (!r.ok()) return r.error(where);

  m.hidden_size = *hidden;
  m.num_layers = *layers;
  m.intermediate_size = *ffn;
  m.num_heads = *heads;
  m.num_kv_heads = kv_heads.value_or(*heads);
  m.max_position_embeddings = *context;
  m.norm_eps = *eps;
  auto err = [&](const std::string& s) { return Error{where + ": " + s}; };
  if (!key_length && *hidden % *heads != 0)
    return err(a + "embedding_length " + std::to_string(*hidden) + " is not a multiple of " + a +
               "attention.head_count " + std::to_string(*heads) + " and " + a + "attention.key_length is not given");
  m.head_dim = key_length.value_or(*hidden / *heads);
  if (value_length && *value_length != m.head_dim)
    return err(a + "attention.value_length " + std::to_string(*value_length) + " differs from the key length " +
               std::to_string(m.head_dim) + " (not supported)");
  if (m.num_heads * m.head_dim > kMaxWidth)
    return err("head_count x head_dim = " + std::to_string(m.num_heads * m.head_dim) + " is too large");
  if (m.num_heads % m.num_kv_heads != 0)
    return err(a + "attention.head_count " + std::to_string(m.num_heads) + " is not a multiple of " + a +
               "attention.head_count_kv " + std::to_string(m.num_kv_heads));

  // Vocabulary: the tokenizer's token count, which the embedding's rows must match.
  const GgufTensorInfo* embd = h.tensor("token_embd.weight");
  if (embd == nullptr) return err("no tensor 'token_embd.weight'");
  if (embd->shape.size() != 2)
    return err("tensor 'token_embd.weight' has shape " + shape_string(embd->shape) + ", expected [vocab, " +
               std::to_string(m.hidden_size) + "]");
  const int64_t embd_rows = embd->shape[0];
  if (n_tokens && static_cast<int64_t>(*n_tokens) != embd_rows)
    return err("tokenizer.ggml.tokens has " + std::to_string(*n_tokens) + " tokens but token_embd.weight has " +
               std::to_string(embd_rows) + " rows");
  if (vocab_key && *vocab_key != embd_rows)
    return err(a + "vocab_size " + std::to_string(*vocab_key) + " differs from token_embd.weight's " +
               std::to_string(embd_rows) + " rows");
  if (embd_rows < 1 || embd_rows > kMaxCount)
    return err("token_embd.weight's " + std::to_string(embd_rows) + " rows are not a usable vocabulary size");
  m.vocab_size = embd_rows;
  for (auto [id, key] : {std::pair{bos, "bos"}, std::pair{eos, "eos"}})
    if (id && *id >= m.vocab_size)
      return err("tokenizer.ggml." + std::string(key) + "_token_id " + std::to_string(*id) +
                 " is outside the vocabulary of " + std::to_string(m.vocab_size));
  m.bos_token_id = bos.value_or(-1);
  m.eos_token_id = eos.value_or(-1);

  // The head is tied when it is not stored (GPT-2's converter stores a byte copy of
  // the embedding; that is tied too).
  const GgufTensorInfo* output = h.tensor("output.weight");
  m.tie_embeddings = output == nullptr || (gpt2 && same_tensor(h, file, *output, *embd));

  auto has = [&](const char* name) { return h.tensor(name) != nullptr; };
  switch (m.family) {
    case Family::kLlama:
      m.qkv_bias = has("blk.0.attn_q.bias");
      m.o_bias = has("blk.0.attn_output.bias");
      m.mlp_bias = has("blk.0.ffn_up.bias");
      break;
    case Family::kQwen2:
      m.qkv_bias = true;
      break;
    case Family::kQwen3:
      m.qkv_bias = has("blk.0.attn_q.bias");
      m.o_bias = has("blk.0.attn_output.bias");
      m.qk_norm = true;
      break;
    case Family::kGptNeoX:
      m.gated_mlp = false;
      m.qkv_bias = has("blk.0.attn_qkv.bias");
      m.o_bias = has("blk.0.attn_output.bias");
      m.mlp_bias = true;
      m.layer_norm = true;
      m.parallel_residual = parallel.value_or(true);
      m.activation = ModelConfig::Activation::kGelu;  // GGUF names none: HF's default "gelu"
      break;
    case Family::kGpt2:
      if (m.num_kv_heads != m.num_heads)
        return err("gpt2.attention.head_count_kv " + std::to_string(m.num_kv_heads) + " differs from head_count " +
                   std::to_string(m.num_heads) + " (GPT-2 has no grouped-query attention)");
      if (m.head_dim * m.num_heads != m.hidden_size)
        return err("gpt2.attention.key_length " + std::to_string(m.head_dim) + " is not embedding_length / head_count");
      m.gated_mlp = false;
      m.qkv_bias = m.o_bias = m.mlp_bias = true;
      m.learned_positions = true;
      m.layer_norm = true;
      m.activation = ModelConfig::Activation::kGeluTanh;  // HF's default "gelu_new"
      break;
  }

  if (!gpt2) {
    m.rope_theta = theta.value_or(10000.0);
    if (m.head_dim % 2 != 0) return err("head_dim " + std::to_string(m.head_dim) + " is odd (rope needs pairs)");
    const int64_t rot = rope_dims.value_or(m.head_dim);
    if (rot > m.head_dim || rot % 2 != 0)
      return err(a + "rope.dimension_count " + std::to_string(rot) + " must be even and at most head_dim " +
                 std::to_string(m.head_dim));
    if (neox) {
      m.rotary_pct = static_cast<double>(rot) / static_cast<double>(m.head_dim);
    } else if (rot != m.head_dim) {
      return err(a + "rope.dimension_count " + std::to_string(rot) + " differs from head_dim " +
                 std::to_string(m.head_dim) + " (partial rotary is supported for gptneox only)");
    }
    // Rope scaling: "none", or "linear" with rope.scaling.factor (or the older
    // rope.scale_linear); llama.cpp's default type is linear, and a factor of 1 is none.
    const std::string type = scaling_type.value_or("linear");
    const double factor = scaling_factor.value_or(scale_linear.value_or(1.0));
    if (type == "linear") {
      if (factor != 1.0) {
        m.rope_scaling = ModelConfig::RopeScaling::kLinear;
        m.rope_factor = factor;
      }
    } else if (type != "none") {
      return err(a + "rope.scaling.type '" + type + "' is not supported (none, linear)");
    }
    GB_RETURN_IF_ERROR(rope_freqs_scaling(h, file, original_context.value_or(8192), m));
  }
  return m;
}
Result<ModelConfig> gguf_model_config(const std::string& path) {
  Result<MappedFile> m = MappedFile::open(path);
  if (!m) return m.error();
  Result<GgufHeader> h = parse_gguf_header(m->data(), m->size(), path);
  if (!h) return h.error();
  return gguf_model_config(*h, m->data());
}

}  // namespace gb::engine

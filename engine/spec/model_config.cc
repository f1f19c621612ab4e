// Model references and Hugging Face config.json reading (engine/spec/model_config.h).
// The presets themselves live in engine/spec/model_presets.cc.
#include "engine/spec/model_config.h"

#include "common/json_parse.h"
#include "engine/spec/gguf/gguf_config.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace gb::engine {
namespace {

using nlohmann::json;

constexpr std::string_view kSyntheticPrefix = "synthetic:";
constexpr std::string_view kHfPrefix = "hf:";
constexpr std::string_view kGgufPrefix = "gguf:";

std::string type_of(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

// Reads typed fields of one config object, collecting every problem so that one
// error message names them all.
class FieldReader {
 public:
  FieldReader(const json& c, const std::string& where) : c_(c), where_(where) {}

  // Integer fields; an integral float (4096.0) is accepted. Missing or null optional
  // fields give nullopt. Every integer read here must be >= 1.
  std::optional<int64_t> integer(const char* key, bool required) {
    const json* v = find(key, required);
    if (v == nullptr) return std::nullopt;
    if (v->is_number_integer() || v->is_number_unsigned() ||
        (v->is_number_float() && std::isfinite(v->get<double>()) &&
         v->get<double>() == std::trunc(v->get<double>()))) {
      const double d = v->get<double>();
      if (d >= 1 && d < 9.0e15) return static_cast<int64_t>(d);
      fail(std::string(key) + " must be a positive integer, got " + v->dump());
      return std::nullopt;
    }
    fail(std::string(key) + " must be an integer, got " + type_of(*v));
    return std::nullopt;
  }

  // Positive numbers (epsilons, rope theta, rotary fraction).
  std::optional<double> number(const char* key) {
    const json* v = find(key, false);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) {
      fail(std::string(key) + " must be a number, got " + type_of(*v));
      return std::nullopt;
    }
    const double d = v->get<double>();
    if (!(d > 0) || !std::isfinite(d)) {
      fail(std::string(key) + " must be a positive number, got " + v->dump());
      return std::nullopt;
    }
    return d;
  }

  std::optional<bool> boolean(const char* key) {
    const json* v = find(key, false);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) {
      fail(std::string(key) + " must be a boolean, got " + type_of(*v));
      return std::nullopt;
    }
    return v->get<bool>();
  }

  std::optional<std::string> string(const char* key, bool required) {
    const json* v = find(key, required);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) {
      fail(std::string(key) + " must be a string, got " + type_of(*v));
      return std::nullopt;
    }
    return v->get<std::string>();
  }

  void fail(std::string message) { errors_.push_back(std::move(message)); }
  bool ok() const { return errors_.empty(); }
  Error error() const {
    std::string m = where_ + ": ";
    for (size_t i = 0; i < errors_.size(); ++i) m += (i ? "; " : "") + errors_[i];
    return Error{m};
  }

 private:
  const json* find(const char* key, bool required) {
    auto it = c_.find(key);
    if (it == c_.end() || it->is_null()) {
      if (required) fail(std::string("missing required field ") + key);
      return nullptr;
    }
    return &*it;
  }

  const json& c_;
  const std::string& where_;
  std::vector<std::string> errors_;
};

constexpr const char* kModelTypes = "llama, mistral, qwen2, qwen3, gpt_neox, gpt2, internlm";

}  // namespace

Result<ModelConfig> model_config_from_hf(const json& config, const std::string& where) {
  if (!config.is_object()) return Error{where + ": expected a JSON object, got " + type_of(config)};
  FieldReader r(config, where);
  const std::optional<std::string> type = r.string("model_type", true);
  if (!type) return r.error();
  const std::string& t = *type;

  ModelConfig m;
  m.name = where;
  if (auto n = config.find("_name_or_path"); n != config.end() && n->is_string() && !n->get<std::string>().empty())
    m.name = n->get<std::string>();

  if (t == "gpt2") {
    m.family = Family::kGpt2;
    auto vocab = r.integer("vocab_size", true);
    auto hidden = r.integer("n_embd", true);
    auto layers = r.integer("n_layer", true);
    auto inner = r.integer("n_inner", false);
    auto heads = r.integer("n_head", true);
    auto positions = r.integer("n_positions", false);
    auto eps = r.number("layer_norm_epsilon");
    auto tie = r.boolean("tie_word_embeddings");
    if (!r.ok()) return r.error();
    m.vocab_size = *vocab;
    m.hidden_size = *hidden;
    m.num_layers = *layers;
    m.intermediate_size = inner.value_or(4 * *hidden);
    if (*heads <= 0 || *hidden % *heads != 0)
      return Error{where + ": n_embd " + std::to_string(*hidden) + " is not a multiple of n_head " +
                   std::to_string(*heads)};
    m.num_heads = *heads;
    m.num_kv_heads = *heads;
    m.head_dim = *hidden / *heads;
    m.max_position_embeddings = positions.value_or(1024);
    m.norm_eps = eps.value_or(1e-5);
    m.tie_embeddings = tie.value_or(true);
    m.gated_mlp = false;
    m.qkv_bias = m.o_bias = m.mlp_bias = true;
    m.learned_positions = true;
    m.layer_norm = true;
  } else if (t == "llama" || t == "mistral" || t == "internlm" || t == "qwen2" || t == "qwen3" ||
             t == "gpt_neox") {
    const bool neox = t == "gpt_neox";
    auto vocab = r.integer("vocab_size", true);
    auto hidden = r.integer("hidden_size", true);
    auto layers = r.integer("num_hidden_layers", true);
    auto inter = r.integer("intermediate_size", true);
    auto heads = r.integer("num_attention_heads", true);
    auto kv_heads = r.integer("num_key_value_heads", false);
    auto head_dim = r.integer("head_dim", false);
    auto positions = r.integer("max_position_embeddings", false);
    auto tie = r.boolean("tie_word_embeddings");
    auto theta = r.number(neox && !config.contains("rope_theta") ? "rotary_emb_base" : "rope_theta");
    auto eps = r.number(neox ? "layer_norm_eps" : "rms_norm_eps");
    // Family switches: llama/mistral/qwen3 attention_bias (+ llama mlp_bias),
    // internlm bias, gpt_neox attention_bias/rotary_pct/use_parallel_residual.
    std::optional<bool> attention_bias, mlp_bias, internlm_bias, parallel;
    std::optional<double> rotary_pct;
    if (t == "llama" || t == "mistral" || t == "qwen3" || neox) attention_bias = r.boolean("attention_bias");
    if (t == "llama") mlp_bias = r.boolean("mlp_bias");
    if (t == "internlm") internlm_bias = r.boolean("bias");
    if (neox) {
      rotary_pct = r.number("rotary_pct");
      parallel = r.boolean("use_parallel_residual");
      if (rotary_pct && *rotary_pct > 1) r.fail("rotary_pct must be in (0, 1], got " + std::to_string(*rotary_pct));
    }
    if (head_dim == std::nullopt && hidden && heads && *hidden % *heads != 0)
      r.fail("hidden_size " + std::to_string(*hidden) + " is not a multiple of num_attention_heads " +
             std::to_string(*heads) + " and head_dim is not given");
    if (!r.ok()) return r.error();
    m.vocab_size = *vocab;
    m.hidden_size = *hidden;
    m.num_layers = *layers;
    m.intermediate_size = *inter;
    m.num_heads = *heads;
    m.num_kv_heads = kv_heads.value_or(*heads);
    m.head_dim = head_dim.value_or(*hidden / *heads);
    m.max_position_embeddings = positions.value_or(2048);
    m.tie_embeddings = tie.value_or(false);
    m.rope_theta = theta.value_or(10000.0);
    // transformers 5 writes rope_parameters {"rope_type", "rope_theta", ...} instead.
    if (auto rp = config.find("rope_parameters"); !theta && rp != config.end() && rp->is_object())
      if (auto t5 = rp->find("rope_theta"); t5 != rp->end() && t5->is_number() && t5->get<double>() > 0)
        m.rope_theta = t5->get<double>();
    m.norm_eps = eps.value_or(neox ? 1e-5 : 1e-6);
    if (t == "llama" || t == "mistral") {
      m.family = Family::kLlama;
      m.qkv_bias = m.o_bias = attention_bias.value_or(false);
      m.mlp_bias = mlp_bias.value_or(false);
    } else if (t == "internlm") {
      m.family = Family::kLlama;
      m.qkv_bias = m.o_bias = internlm_bias.value_or(true);
    } else if (t == "qwen2") {
      m.family = Family::kQwen2;
      m.qkv_bias = true;
    } else if (t == "qwen3") {
      m.family = Family::kQwen3;
      m.qkv_bias = m.o_bias = attention_bias.value_or(false);
      m.qk_norm = true;
    } else {
      m.family = Family::kGptNeoX;
      m.gated_mlp = false;
      m.qkv_bias = m.o_bias = attention_bias.value_or(true);
      m.mlp_bias = true;
      m.layer_norm = true;
      m.parallel_residual = parallel.value_or(true);
      m.rotary_pct = rotary_pct.value_or(0.25);
    }
  } else {
    return Error{where + ": unsupported model_type '" + t + "' (supported: " + kModelTypes + ")"};
  }
  // The activation: hidden_act (activation_function for GPT-2), family default.
  {
    const char* key = t == "gpt2" ? "activation_function" : "hidden_act";
    std::optional<std::string> act = r.string(key, false);
    const std::string a = act.value_or(t == "gpt2" ? "gelu_new" : (t == "gpt_neox" ? "gelu" : "silu"));
    if (a == "silu" || a == "swish") m.activation = ModelConfig::Activation::kSilu;
    else if (a == "gelu") m.activation = ModelConfig::Activation::kGelu;
    else if (a == "gelu_new" || a == "gelu_pytorch_tanh" || a == "gelu_fast") m.activation = ModelConfig::Activation::kGeluTanh;
    else r.fail(std::string(key) + " '" + a + "' is not supported (supported: silu, gelu, gelu_new, gelu_pytorch_tanh)");
    if (m.gated_mlp != (m.activation == ModelConfig::Activation::kSilu) && r.ok() && t != "gpt_neox" && t != "gpt2")
      r.fail(std::string(key) + " '" + a + "' is not supported with a gated MLP (only silu)");
  }
  // Special tokens: an integer, or (Llama 3 instruct) a list whose first is used.
  auto token_id = [&](const char* key) -> int64_t {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) return -1;
    const json& v = it->is_array() && !it->empty() ? it->front() : *it;
    if (v.is_number_integer() && v.get<int64_t>() >= 0) return v.get<int64_t>();
    r.fail(std::string(key) + " must be a non-negative integer or a list of them, got " + it->dump());
    return -1;
  };
  m.bos_token_id = token_id("bos_token_id");
  m.eos_token_id = token_id("eos_token_id");
  // rope_scaling: null, {"type"|"rope_type": "linear", "factor"} or "llama3" with
  // its three extra fields. Anything else is refused rather than silently ignored.
  auto rs = config.find("rope_scaling");
  if (rs == config.end() || rs->is_null()) rs = config.find("rope_parameters");
  if (rs != config.end() && !rs->is_null()) {
    if (!rs->is_object()) {
      r.fail("rope_scaling must be an object or null, got " + type_of(*rs));
    } else {
      const std::string in_rs = where + " (rope_scaling)";
      FieldReader s(*rs, in_rs);
      std::optional<std::string> kind = rs->contains("rope_type") ? s.string("rope_type", true) : s.string("type", true);
      std::optional<double> factor = s.number("factor");
      if (kind && (*kind == "linear" || *kind == "llama3")) {
        if (!factor) s.fail("missing required field factor");
        m.rope_factor = factor.value_or(1.0);
        if (*kind == "linear") {
          m.rope_scaling = ModelConfig::RopeScaling::kLinear;
        } else {
          m.rope_scaling = ModelConfig::RopeScaling::kLlama3;
          m.rope_low_freq_factor = s.number("low_freq_factor").value_or(1.0);
          m.rope_high_freq_factor = s.number("high_freq_factor").value_or(4.0);
          m.rope_original_max_positions = s.integer("original_max_position_embeddings", false).value_or(8192);
          if (m.rope_high_freq_factor <= m.rope_low_freq_factor)
            s.fail("high_freq_factor must be greater than low_freq_factor");
        }
      } else if (kind && *kind != "default") {
        s.fail("rope_scaling type '" + *kind + "' is not supported (supported: linear, llama3)");
      }
      if (!s.ok()) return s.error();
    }
  }
  if (!r.ok()) return r.error();
  if (m.num_heads % m.num_kv_heads != 0)
    return Error{where + ": num_attention_heads " + std::to_string(m.num_heads) +
                 " is not a multiple of num_key_value_heads " + std::to_string(m.num_kv_heads)};
  return m;
}

Result<ModelRef> parse_model_ref(const std::string& ref) {
  ModelRef r;
  if (ref.starts_with(kHfPrefix)) {
    r.kind = ModelRef::Kind::kHf;
    r.hf_dir = ref.substr(kHfPrefix.size());
    if (r.hf_dir.empty()) return Error{"model '" + ref + "': hf: needs a directory, e.g. hf:/models/qwen1.5-0.5b"};
    return r;
  }
  if (ref.starts_with(kGgufPrefix)) {
    r.kind = ModelRef::Kind::kGguf;
    r.gguf_file = ref.substr(kGgufPrefix.size());
    if (r.gguf_file.empty()) return Error{"model '" + ref + "': gguf: needs a file, e.g. gguf:/models/qwen2-0.5b-f16.gguf"};
    return r;
  }
  std::string_view name = ref;
  if (ref.starts_with(kSyntheticPrefix)) {
    r.kind = ModelRef::Kind::kSynthetic;
    name.remove_prefix(kSyntheticPrefix.size());
    if (const size_t at = name.find('@'); at != std::string_view::npos) {
      const std::string_view seed = name.substr(at + 1);
      auto [ptr, ec] = std::from_chars(seed.data(), seed.data() + seed.size(), r.seed);
      if (seed.empty() || ec != std::errc() || ptr != seed.data() + seed.size())
        return Error{"model '" + ref + "': the seed after @ must be an unsigned integer"};
      name = name.substr(0, at);
    }
  }
  if (find_model_preset(name) == nullptr) {
    std::string known;
    for (const auto& p : model_presets()) known += (known.empty() ? "" : ", ") + p.name;
    return Error{"unknown model '" + ref + "' (presets: " + known +
                 "; or synthetic:PRESET[@SEED], hf:DIR, gguf:FILE)"};
  }
  r.preset = std::string(name);
  return r;
}

Result<ModelConfig> resolve_model(const std::string& ref) {
  Result<ModelRef> parsed = parse_model_ref(ref);
  if (!parsed) return parsed.error();
  if (parsed->kind == ModelRef::Kind::kGguf) {
    Result<ModelConfig> m = gguf_model_config(parsed->gguf_file);
    if (!m) return Error{"model '" + ref + "': " + m.error().message};
    m->name = ref;
    return m;
  }
  if (parsed->kind != ModelRef::Kind::kHf) {
    ModelConfig m = *find_model_preset(parsed->preset);
    m.name = ref;
    return m;
  }
  const std::string path = (std::filesystem::path(parsed->hf_dir) / "config.json").string();
  std::ifstream in(path);
  if (!in) return Error{"model '" + ref + "': cannot read " + path + " (no such file or not readable)"};
  in.close();
  Result<json> config = read_json_file(path);  // 16 MiB, 64 levels, finite numbers
  if (!config) return config.error();
  Result<ModelConfig> m = model_config_from_hf(*config, path);
  if (!m) return m.error();
  m->name = ref;
  return m;
}

}  // namespace gb::engine

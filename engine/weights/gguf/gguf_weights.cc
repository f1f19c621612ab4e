// The GGUF WeightSource (engine/weights/gguf/gguf_weights.h).
#include "engine/weights/gguf/gguf_weights.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>
#include <vector>

#include "common/strings.h"
#include "engine/spec/gguf/gguf_config.h"
#include "engine/spec/model_tensors.h"
#include "engine/tokenizer/gguf_vocab.h"
#include "engine/weights/gguf/gguf_file.h"
#include "engine/weights/hf/hf_checkpoint.h"

namespace gb::engine {
namespace {

// One llama.cpp name and its Hugging Face counterpart; per-layer rules are the part
// after "blk.N." and after the family's HF layer prefix.
struct NameRule {
  std::string_view gguf, hf;
};

struct FamilyNames {
  std::string_view hf_layer_prefix;  // followed by N "."
  std::vector<NameRule> globals;
  std::vector<NameRule> layer;
};

const FamilyNames& family_names(Family f) {
  static const FamilyNames kLlamaLike = {
      "model.layers.",
      {{"token_embd.weight", "model.embed_tokens.weight"},
       {"output_norm.weight", "model.norm.weight"},
       {"output.weight", "lm_head.weight"}},
      {{"attn_norm.weight", "input_layernorm.weight"},
       {"attn_q.weight", "self_attn.q_proj.weight"},
       {"attn_q.bias", "self_attn.q_proj.bias"},
       {"attn_k.weight", "self_attn.k_proj.weight"},
       {"attn_k.bias", "self_attn.k_proj.bias"},
       {"attn_v.weight", "self_attn.v_proj.weight"},
       {"attn_v.bias", "self_attn.v_proj.bias"},
       {"attn_output.weight", "self_attn.o_proj.weight"},
       {"attn_output.bias", "self_attn.o_proj.bias"},
       {"attn_q_norm.weight", "self_attn.q_norm.weight"},
       {"attn_k_norm.weight", "self_attn.k_norm.weight"},
       {"ffn_norm.weight", "post_attention_layernorm.weight"},
       {"ffn_gate.weight", "mlp.gate_proj.weight"},
       {"ffn_gate.bias", "mlp.gate_proj.bias"},
       {"ffn_up.weight", "mlp.up_proj.weight"},
       {"ffn_up.bias", "mlp.up_proj.bias"},
       {"ffn_down.weight", "mlp.down_proj.weight"},
       {"ffn_down.bias", "mlp.down_proj.bias"}}};
  static const FamilyNames kNeoX = {
      "gpt_neox.layers.",
      {{"token_embd.weight", "gpt_neox.embed_in.weight"},
       {"output_norm.weight", "gpt_neox.final_layer_norm.weight"},
       {"output_norm.bias", "gpt_neox.final_layer_norm.bias"},
       {"output.weight", "embed_out.weight"}},
      {{"attn_norm.weight", "input_layernorm.weight"},
       {"attn_norm.bias", "input_layernorm.bias"},
       {"attn_qkv.weight", "attention.query_key_value.weight"},
       {"attn_qkv.bias", "attention.query_key_value.bias"},
       {"attn_output.weight", "attention.dense.weight"},
       {"attn_output.bias", "attention.dense.bias"},
       {"ffn_norm.weight", "post_attention_layernorm.weight"},
       {"ffn_norm.bias", "post_attention_layernorm.bias"},
       {"ffn_up.weight", "mlp.dense_h_to_4h.weight"},
       {"ffn_up.bias", "mlp.dense_h_to_4h.bias"},
       {"ffn_down.weight", "mlp.dense_4h_to_h.weight"},
       {"ffn_down.bias", "mlp.dense_4h_to_h.bias"}}};
  static const FamilyNames kGpt2 = {
      "transformer.h.",
      {{"token_embd.weight", "transformer.wte.weight"},
       {"position_embd.weight", "transformer.wpe.weight"},
       {"output_norm.weight", "transformer.ln_f.weight"},
       {"output_norm.bias", "transformer.ln_f.bias"},
       {"output.weight", "lm_head.weight"}},
      {{"attn_norm.weight", "ln_1.weight"},
       {"attn_norm.bias", "ln_1.bias"},
       {"attn_qkv.weight", "attn.c_attn.weight"},
       {"attn_qkv.bias", "attn.c_attn.bias"},
       {"attn_output.weight", "attn.c_proj.weight"},
       {"attn_output.bias", "attn.c_proj.bias"},
       {"ffn_norm.weight", "ln_2.weight"},
       {"ffn_norm.bias", "ln_2.bias"},
       {"ffn_up.weight", "mlp.c_fc.weight"},
       {"ffn_up.bias", "mlp.c_fc.bias"},
       {"ffn_down.weight", "mlp.c_proj.weight"},
       {"ffn_down.bias", "mlp.c_proj.bias"}}};
  switch (f) {
    case Family::kGptNeoX: return kNeoX;
    case Family::kGpt2: return kGpt2;
    default: return kLlamaLike;
  }
}

// "N.rest" -> N and "rest" (N decimal without leading zeros, below 2^24).
bool split_layer(std::string_view s, int64_t* layer, std::string_view* rest) {
  const size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 8 || (s[0] == '0' && dot > 1)) return false;
  int64_t n = 0;
  for (size_t i = 0; i < dot; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    n = n * 10 + (s[i] - '0');
  }
  if (n >= kGgufMaxWidth) return false;
  *layer = n;
  *rest = s.substr(dot + 1);
  return true;
}

// The HF -> llama.cpp direction of gguf_to_hf_name.
std::string hf_to_gguf_name(Family family, std::string_view hf) {
  const FamilyNames& names = family_names(family);
  for (const NameRule& r : names.globals)
    if (r.hf == hf) return std::string(r.gguf);
  if (!hf.starts_with(names.hf_layer_prefix)) return "";
  int64_t layer;
  std::string_view rest;
  if (!split_layer(hf.substr(names.hf_layer_prefix.size()), &layer, &rest)) return "";
  for (const NameRule& r : names.layer)
    if (r.hf == rest) return "blk." + std::to_string(layer) + "." + std::string(r.gguf);
  return "";
}

// How a stored tensor differs from its HF layout (see open_gguf_weights in gguf.h).
enum class Transform { kNone, kUnpermuteRope, kNeoxQkv, kTranspose };

struct TransformOf {
  Transform kind = Transform::kNone;
  int64_t heads = 0;  // kUnpermuteRope, kNeoxQkv
};

TransformOf transform_of(const ModelConfig& c, std::string_view hf) {
  switch (c.family) {
    case Family::kLlama:
      if (hf.ends_with(".self_attn.q_proj.weight") || hf.ends_with(".self_attn.q_proj.bias"))
        return {Transform::kUnpermuteRope, c.num_heads};
      if (hf.ends_with(".self_attn.k_proj.weight") || hf.ends_with(".self_attn.k_proj.bias"))
        return {Transform::kUnpermuteRope, c.num_kv_heads};
      return {};
    case Family::kGptNeoX:
      if (hf.ends_with(".attention.query_key_value.weight") || hf.ends_with(".attention.query_key_value.bias"))
        return {Transform::kNeoxQkv, c.num_heads};
      return {};
    case Family::kGpt2:
      if (hf.ends_with(".attn.c_attn.weight") || hf.ends_with(".attn.c_proj.weight") ||
          hf.ends_with(".mlp.c_fc.weight") || hf.ends_with(".mlp.c_proj.weight"))
        return {Transform::kTranspose, 0};
      return {};
    default:
      return {};
  }
}

// The HF shape of a stored tensor.
std::vector<int64_t> canonical_shape(const std::vector<int64_t>& stored, Transform t) {
  if (t == Transform::kTranspose && stored.size() == 2) return {stored[1], stored[0]};
  return stored;
}

// Rows of `row_bytes` bytes: dst row d = src row map(d).
template <class F>
std::vector<uint8_t> gather_rows(const uint8_t* src, int64_t rows, size_t row_bytes, F&& map) {
  std::vector<uint8_t> dst(static_cast<size_t>(rows) * row_bytes);
  for (int64_t d = 0; d < rows; ++d)
    std::memcpy(dst.data() + static_cast<size_t>(d) * row_bytes, src + static_cast<size_t>(map(d)) * row_bytes,
                row_bytes);
  return dst;
}

// llama.cpp's converter permutes the q/k rows of each head for its interleaved rope:
//   w.reshape(n_head, 2, head_dim / 2, in).swapaxes(1, 2).reshape(out, in),
// so stored row h*hd + 2i + j holds HF row h*hd + j*(hd/2) + i. The inverse is
// reshape(n_head, head_dim / 2, 2, in).swapaxes(1, 2): HF row h*hd + j*(hd/2) + i
// reads stored row h*hd + 2i + j.
std::vector<uint8_t> unpermute_rope(const uint8_t* src, int64_t rows, size_t row_bytes, int64_t heads) {
  const int64_t hd = rows / heads, half = hd / 2;
  return gather_rows(src, rows, row_bytes, [&](int64_t d) {
    const int64_t h = d / hd, r = d % hd, j = r / half, i = r % half;
    return h * hd + 2 * i + j;
  });
}

// llama.cpp's converter regroups GPT-NeoX's per-head [q_h, k_h, v_h] rows as
// [q of all heads, k of all heads, v of all heads]: HF row (h*3 + j)*hd + x reads
// stored row j*(heads*hd) + h*hd + x.
std::vector<uint8_t> regroup_neox_qkv(const uint8_t* src, int64_t rows, size_t row_bytes, int64_t heads) {
  const int64_t q = rows / 3, hd = q / heads;
  return gather_rows(src, rows, row_bytes, [&](int64_t d) {
    const int64_t h = d / (3 * hd), j = (d / hd) % 3, x = d % hd;
    return j * q + h * hd + x;
  });
}

// [rows, cols] -> [cols, rows], elements of `esize` bytes.
std::vector<uint8_t> transpose(const uint8_t* src, int64_t rows, int64_t cols, size_t esize) {
  std::vector<uint8_t> dst(static_cast<size_t>(rows * cols) * esize);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      std::memcpy(dst.data() + static_cast<size_t>(c * rows + r) * esize,
                  src + static_cast<size_t>(r * cols + c) * esize, esize);
  return dst;
}

class GgufWeights final : public WeightSource {
 public:
  struct Param {
    const GgufTensorInfo* info = nullptr;
    TransformOf transform;
    std::vector<int64_t> shape;  // HF shape
  };

  static Result<std::unique_ptr<WeightSource>> open(const std::string& path, const GgufWeightsOptions& options) {
    Result<std::unique_ptr<GgufFile>> f = GgufFile::open(path);
    if (!f) return f.error();
    Result<ModelConfig> config = gguf_model_config(**f);
    if (!config) return config.error();
    std::unique_ptr<GgufWeights> w(new GgufWeights());
    w->file_ = std::move(*f);
    w->config_ = std::move(*config);
    GB_RETURN_IF_ERROR(w->index(options));
    if (w->file_->header().contains("tokenizer.ggml.model")) {
      Result<std::string> model = w->file_->header().get_string("tokenizer.ggml.model");
      if (!model) return model.error();
      if (*model == "gpt2" || *model == "llama") {
        Result<std::string> text = gguf_tokenizer_json(w->file_->header());
        if (!text) return text.error();
        Result<Tokenizer> t = Tokenizer::from_json_text(*text, path + " (embedded tokenizer)");
        if (!t) return t.error();
        w->tokenizer_.emplace(std::move(*t));
      }
    }
    return std::unique_ptr<WeightSource>(std::move(w));
  }

  const ModelConfig& config() const override { return config_; }
  std::string describe() const override { return "gguf:" + file_->path(); }
  // Rearranged copies are freed; the mapped file's pages leave resident memory.
  void release_tensors() override {
    owned_.clear();
    file_->drop_pages();
  }

  Result<TensorView> tensor(std::string_view name) override {
    if (head_tied_ && name == head_name_) name = embed_name_;
    auto it = params_.find(name);
    if (it == params_.end()) return Error{file_->path() + ": the model has no tensor '" + std::string(name) + "'"};
    const Param& p = it->second;
    const GgufTensorInfo& info = *p.info;
    const std::optional<DType> dt = ggml_type_dtype(static_cast<GgmlType>(info.type));
    const std::optional<kernels::WeightCodec> codec = ggml_weight_codec(info.type);
    if (!codec)  // index() refused these at open
      return Error{file_->path() + ": tensor " + gguf_quote(info.name) + " (" + std::string(name) + ") is " +
                   ggml_type_name(info.type) + ", a type gridbench does not implement"};
    TensorView v;
    v.dtype = dt ? *dt : DType::kU8;
    if (!dt) v.packed = *codec;
    v.shape = p.shape;
    if (p.transform.kind == Transform::kNone) {
      v.data = file_->data(info);
      return v;
    }
    auto owned = owned_.find(name);
    if (owned == owned_.end()) {
      const uint8_t* src = file_->data(info);
      const size_t esize = dt ? dtype_size(*dt) : 1;  // packed tensors are never transposed (index)
      const int64_t rows = info.shape[0];
      const size_t row_bytes = static_cast<size_t>(info.nbytes / static_cast<uint64_t>(std::max<int64_t>(rows, 1)));
      std::vector<uint8_t> bytes;
      switch (p.transform.kind) {
        case Transform::kUnpermuteRope: bytes = unpermute_rope(src, rows, row_bytes, p.transform.heads); break;
        case Transform::kNeoxQkv: bytes = regroup_neox_qkv(src, rows, row_bytes, p.transform.heads); break;
        case Transform::kTranspose: bytes = transpose(src, info.shape[0], info.shape[1], esize); break;
        case Transform::kNone: break;
      }
      owned = owned_.emplace(std::string(name), std::move(bytes)).first;
    }
    v.data = owned->second.data();
    return v;
  }

  uint64_t parameter_bytes() const override { return bytes_; }
  const Tokenizer* tokenizer() const override { return tokenizer_ ? &*tokenizer_ : nullptr; }

 private:
  GgufWeights() = default;

  // Maps every stored tensor to its HF name and checks the set against the config.
  Status index(const GgufWeightsOptions& /*options*/) {
    const ModelConfig& c = config_;
    const std::vector<ExpectedTensor> expected = expected_hf_tensors(c, "transformer.");
    const FamilyNames& names = family_names(c.family);
    embed_name_ = std::string(names.globals[0].hf);
    for (const NameRule& r : names.globals)
      if (r.gguf == "output.weight") head_name_ = std::string(r.hf);
    head_tied_ = c.tie_embeddings;

    std::map<std::string, Param, std::less<>> stored;  // HF name -> stored tensor
    std::vector<std::string> unexpected, missing, mismatched, quantized;
    std::map<std::string, int> quantized_types;
    for (const GgufTensorInfo& t : file_->tensors()) {
      if (t.name == "rope_freqs.weight" && c.family != Family::kGpt2) continue;  // checked by the config: all ones
      if (t.name == "output.weight" && c.tie_embeddings) continue;  // GPT-2's byte copy of the embedding
      const std::string hf = gguf_to_hf_name(c.family, t.name);
      if (hf.empty()) {
        unexpected.push_back(gguf_quote(t.name));
        continue;
      }
      const TransformOf tr = transform_of(c, hf);
      stored[hf] = Param{&t, tr, canonical_shape(t.shape, tr.kind)};
    }
    uint64_t bytes = 0;
    std::set<std::string, std::less<>> expected_names;
    for (const ExpectedTensor& e : expected) {
      expected_names.insert(e.name);
      auto it = stored.find(e.name);
      const std::string gguf = hf_to_gguf_name(c.family, e.name);
      if (it == stored.end()) {
        missing.push_back(gguf_quote(gguf) + " (" + e.name + " " + shape_string(e.shape) + ")");
        continue;
      }
      const Param& p = it->second;
      if (p.shape != e.shape) {
        mismatched.push_back("tensor " + gguf_quote(gguf) + " has shape " + shape_string(p.info->shape) +
                             " but the metadata implies " +
                             shape_string(canonical_shape(e.shape, p.transform.kind)));
        continue;
      }
      const std::optional<DType> dt = ggml_type_dtype(static_cast<GgmlType>(p.info->type));
      if (!dt) {
        if (!ggml_weight_codec(p.info->type)) {
          quantized.push_back(gguf);
          ++quantized_types[ggml_type_name(p.info->type)];
        } else if (p.shape.size() != 2) {
          mismatched.push_back("tensor " + gguf_quote(gguf) + " is " + ggml_type_name(p.info->type) +
                               " but not a matrix (only matrices are held in block types)");
        } else if (p.transform.kind == Transform::kTranspose) {
          mismatched.push_back("tensor " + gguf_quote(gguf) + " is " + ggml_type_name(p.info->type) +
                               ": GPT-2's Conv1D weights cannot be transposed back in a block type");
        }
      } else if (!is_float_weight_dtype(*dt)) {
        mismatched.push_back("tensor " + gguf_quote(gguf) + " is " + ggml_type_name(p.info->type) +
                             ", expected F32, F16 or BF16");
      }
      bytes += p.info->nbytes;
    }
    for (const auto& [hf, p] : stored)
      if (!expected_names.contains(hf)) unexpected.push_back(gguf_quote(p.info->name) + " (" + hf + ")");

    std::vector<std::string> problems;
    if (!missing.empty())
      problems.push_back("missing tensor" + std::string(missing.size() > 1 ? "s " : " ") + join_limited(missing));
    if (!unexpected.empty())
      problems.push_back("unexpected tensor" + std::string(unexpected.size() > 1 ? "s " : " ") +
                         join_limited(unexpected) + " (not a " + std::string(family_name(c.family)) +
                         " parameter for this file's metadata)");
    if (!mismatched.empty()) problems.push_back(join_limited(mismatched));
    if (problems.empty() && !quantized.empty()) {
      std::string types;
      for (const auto& [name, n] : quantized_types)
        types += (types.empty() ? "" : ", ") + name + " x" + std::to_string(n);
      problems.push_back("tensor " + gguf_quote(quantized.front()) + " is " +
                         ggml_type_name(stored.at(gguf_to_hf_name(c.family, quantized.front())).info->type) +
                         ", a GGUF type gridbench does not implement (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, "
                         "Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) (" +
                         std::to_string(quantized.size()) + " such tensors: " + types + ")");
    }
    if (!problems.empty()) {
      std::string m = file_->path() + ": ";
      for (size_t i = 0; i < problems.size(); ++i) m += (i ? "; " : "") + problems[i];
      return Error{m};
    }
    params_ = std::move(stored);
    bytes_ = bytes;
    return Status::Ok();
  }

  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
  std::map<std::string, Param, std::less<>> params_;
  std::map<std::string, std::vector<uint8_t>, std::less<>> owned_;  // rearranged tensors
  std::string embed_name_, head_name_;
  bool head_tied_ = false;
  uint64_t bytes_ = 0;
  std::optional<Tokenizer> tokenizer_;
};

}  // namespace

std::optional<kernels::WeightCodec> ggml_weight_codec(uint32_t ggml_type) {
  using kernels::WeightCodec;
  switch (static_cast<GgmlType>(ggml_type)) {
    case GgmlType::kF32: return WeightCodec::kF32;
    case GgmlType::kF16: return WeightCodec::kF16;
    case GgmlType::kBF16: return WeightCodec::kBF16;
    case GgmlType::kQ8_0: return WeightCodec::kQ8_0;
    case GgmlType::kQ4_0: return WeightCodec::kQ4_0;
    case GgmlType::kQ4_1: return WeightCodec::kQ4_1;
    case GgmlType::kQ5_0: return WeightCodec::kQ5_0;
    case GgmlType::kQ5_1: return WeightCodec::kQ5_1;
    case GgmlType::kQ2_K: return WeightCodec::kQ2_K;
    case GgmlType::kQ3_K: return WeightCodec::kQ3_K;
    case GgmlType::kQ4_K: return WeightCodec::kQ4_K;
    case GgmlType::kQ5_K: return WeightCodec::kQ5_K;
    case GgmlType::kQ6_K: return WeightCodec::kQ6_K;
    default: return std::nullopt;
  }
}

std::string gguf_to_hf_name(Family family, std::string_view gguf_name) {
  const FamilyNames& names = family_names(family);
  for (const NameRule& r : names.globals)
    if (r.gguf == gguf_name) return std::string(r.hf);
  if (!gguf_name.starts_with("blk.")) return "";
  int64_t layer;
  std::string_view rest;
  if (!split_layer(gguf_name.substr(4), &layer, &rest)) return "";
  for (const NameRule& r : names.layer)
    if (r.gguf == rest) return std::string(names.hf_layer_prefix) + std::to_string(layer) + "." + std::string(r.hf);
  return "";
}

Result<std::unique_ptr<WeightSource>> open_gguf_weights(const std::string& path, const GgufWeightsOptions& options) {
  return GgufWeights::open(path, options);
}

}  // namespace gb::engine

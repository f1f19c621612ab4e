// The GGUF tests' converter: tiny models of every family written the way
// llama.cpp's converter (convert_hf_to_gguf.py) writes them (names, reversed
// dimensions, the llama q/k permutation, GPT-NeoX's regrouped qkv, GPT-2's
// transposed Conv1D weights), and the helpers that write, edit and open them.
// Shared by gguf_test.cc, gguf_errors_test.cc and gguf_peer_test.cc.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/spec/gguf/gguf_config.h"
#include "engine/spec/gguf/gguf_header.h"
#include "engine/weights/gguf/gguf_weights.h"
#include "engine/weights/gguf/gguf_writer.h"
#include "engine/weights/hf/hf_checkpoint.h"
#include "tests/engine/temp_dir.h"

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

namespace gb::engine::gguf_test {

using nlohmann::json;
using W = GgufWriteValue;
using gb::test_support::TempDir;

// ---- a test-side converter, written from llama.cpp's convert_hf_to_gguf.py ----

// llama.cpp's name of an HF tensor.
inline std::string gguf_name(Family f, const std::string& hf) {
  static const std::map<std::string, std::string> llama_globals = {
      {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"}};
  static const std::map<std::string, std::string> llama_layer = {
      {"input_layernorm.weight", "attn_norm.weight"}, {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"}, {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.k_proj.bias", "attn_k.bias"}, {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.v_proj.bias", "attn_v.bias"}, {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.o_proj.bias", "attn_output.bias"}, {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"}, {"mlp.gate_proj.bias", "ffn_gate.bias"},
      {"mlp.up_proj.weight", "ffn_up.weight"}, {"mlp.up_proj.bias", "ffn_up.bias"},
      {"mlp.down_proj.weight", "ffn_down.weight"}, {"mlp.down_proj.bias", "ffn_down.bias"}};
  static const std::map<std::string, std::string> neox_globals = {
      {"gpt_neox.embed_in.weight", "token_embd.weight"}, {"gpt_neox.final_layer_norm.weight", "output_norm.weight"},
      {"gpt_neox.final_layer_norm.bias", "output_norm.bias"}, {"embed_out.weight", "output.weight"}};
  static const std::map<std::string, std::string> neox_layer = {
      {"input_layernorm.weight", "attn_norm.weight"}, {"input_layernorm.bias", "attn_norm.bias"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"}, {"post_attention_layernorm.bias", "ffn_norm.bias"},
      {"attention.query_key_value.weight", "attn_qkv.weight"}, {"attention.query_key_value.bias", "attn_qkv.bias"},
      {"attention.dense.weight", "attn_output.weight"}, {"attention.dense.bias", "attn_output.bias"},
      {"mlp.dense_h_to_4h.weight", "ffn_up.weight"}, {"mlp.dense_h_to_4h.bias", "ffn_up.bias"},
      {"mlp.dense_4h_to_h.weight", "ffn_down.weight"}, {"mlp.dense_4h_to_h.bias", "ffn_down.bias"}};
  static const std::map<std::string, std::string> gpt2_globals = {
      {"transformer.wte.weight", "token_embd.weight"}, {"transformer.wpe.weight", "position_embd.weight"},
      {"transformer.ln_f.weight", "output_norm.weight"}, {"transformer.ln_f.bias", "output_norm.bias"},
      {"lm_head.weight", "output.weight"}};
  static const std::map<std::string, std::string> gpt2_layer = {
      {"ln_1.weight", "attn_norm.weight"}, {"ln_1.bias", "attn_norm.bias"},
      {"attn.c_attn.weight", "attn_qkv.weight"}, {"attn.c_attn.bias", "attn_qkv.bias"},
      {"attn.c_proj.weight", "attn_output.weight"}, {"attn.c_proj.bias", "attn_output.bias"},
      {"ln_2.weight", "ffn_norm.weight"}, {"ln_2.bias", "ffn_norm.bias"},
      {"mlp.c_fc.weight", "ffn_up.weight"}, {"mlp.c_fc.bias", "ffn_up.bias"},
      {"mlp.c_proj.weight", "ffn_down.weight"}, {"mlp.c_proj.bias", "ffn_down.bias"}};
  const auto& globals = f == Family::kGptNeoX ? neox_globals : f == Family::kGpt2 ? gpt2_globals : llama_globals;
  const auto& layer = f == Family::kGptNeoX ? neox_layer : f == Family::kGpt2 ? gpt2_layer : llama_layer;
  const std::string prefix = f == Family::kGptNeoX ? "gpt_neox.layers."
                             : f == Family::kGpt2  ? "transformer.h."
                                                   : "model.layers.";
  if (auto it = globals.find(hf); it != globals.end()) return it->second;
  GB_CHECK(hf.rfind(prefix, 0) == 0);
  const std::string rest = hf.substr(prefix.size());
  const size_t dot = rest.find('.');
  return "blk." + rest.substr(0, dot) + "." + layer.at(rest.substr(dot + 1));
}

// Rows of `row_bytes`: out row r = in row src(r).
inline std::vector<uint8_t> rows_from(const std::vector<uint8_t>& in, size_t row_bytes,
                               const std::function<int64_t(int64_t)>& src) {
  std::vector<uint8_t> out(in.size());
  const int64_t rows = static_cast<int64_t>(in.size() / row_bytes);
  for (int64_t r = 0; r < rows; ++r) std::memcpy(out.data() + r * row_bytes, in.data() + src(r) * row_bytes, row_bytes);
  return out;
}

// LlamaModel.permute: w.reshape(n_head, 2, hd/2, *rest).swapaxes(1, 2).reshape(w.shape):
// out[h][i][j] = in[h][j][i] over (head, hd/2, 2) vs (head, 2, hd/2).
inline std::vector<uint8_t> llama_permute(const std::vector<uint8_t>& in, size_t row_bytes, int64_t n_head) {
  const int64_t rows = static_cast<int64_t>(in.size() / row_bytes), hd = rows / n_head, half = hd / 2;
  return rows_from(in, row_bytes, [=](int64_t r) {
    const int64_t h = r / hd, i = (r % hd) / 2, j = r % 2;
    return h * hd + j * half + i;
  });
}

// GPTNeoXModel: qkv.reshape(n_head, 3, hd, in); cat(qkv[:, 0], qkv[:, 1], qkv[:, 2]).
inline std::vector<uint8_t> neox_regroup(const std::vector<uint8_t>& in, size_t row_bytes, int64_t n_head) {
  const int64_t rows = static_cast<int64_t>(in.size() / row_bytes), q = rows / 3, hd = q / n_head;
  return rows_from(in, row_bytes, [=](int64_t r) {
    const int64_t j = r / q, h = (r % q) / hd, x = r % hd;
    return (h * 3 + j) * hd + x;
  });
}

inline std::vector<uint8_t> transpose_bytes(const std::vector<uint8_t>& in, int64_t rows, int64_t cols, size_t esize) {
  std::vector<uint8_t> out(in.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) std::memcpy(&out[(c * rows + r) * esize], &in[(r * cols + c) * esize], esize);
  return out;
}

inline uint32_t ggml_of(DType t) {
  switch (t) {
    case DType::kF16: return static_cast<uint32_t>(GgmlType::kF16);
    case DType::kBF16: return static_cast<uint32_t>(GgmlType::kBF16);
    default: return static_cast<uint32_t>(GgmlType::kF32);
  }
}

inline std::vector<uint8_t> encode(const std::vector<float>& v, DType t) {
  std::vector<uint8_t> b(v.size() * dtype_size(t));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == DType::kF32) {
      std::memcpy(&b[4 * i], &v[i], 4);
    } else {
      const uint16_t h = t == DType::kF16 ? kernels::f32_to_f16(v[i]) : kernels::f32_to_bf16(v[i]);
      std::memcpy(&b[2 * i], &h, 2);
    }
  }
  return b;
}

// One HF tensor of a tiny model: distinct values (k * 4096 + i) / 64, exact in F32.
struct HfTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // HF layout
};

struct TinyModel {
  ModelConfig config;  // as model_config_from_hf reads it
  std::vector<HfTensor> hf;
  GgufWriteMetadata metadata;
  std::vector<GgufWriteTensor> tensors;
};

// An HF config.json -> (the HF model, its GGUF conversion), the converter's way.
inline TinyModel convert(const std::string& config_json, DType dtype = DType::kF32, DType norm_dtype = DType::kF32) {
  TinyModel m;
  auto c = model_config_from_hf(json::parse(config_json), "config.json");
  GB_CHECK(c.ok());
  m.config = *c;
  const ModelConfig& cf = m.config;
  const std::string arch = cf.family == Family::kLlama ? "llama" : cf.family == Family::kQwen2 ? "qwen2"
                         : cf.family == Family::kQwen3 ? "qwen3" : cf.family == Family::kGptNeoX ? "gptneox" : "gpt2";
  const std::string a = arch + ".";
  auto& md = m.metadata;
  md.push_back({"general.architecture", W::string(arch)});
  md.push_back({"general.name", W::string("tiny")});
  md.push_back({a + "context_length", W::u32(static_cast<uint32_t>(cf.max_position_embeddings))});
  md.push_back({a + "embedding_length", W::u32(static_cast<uint32_t>(cf.hidden_size))});
  md.push_back({a + "block_count", W::u32(static_cast<uint32_t>(cf.num_layers))});
  md.push_back({a + "feed_forward_length", W::u32(static_cast<uint32_t>(cf.intermediate_size))});
  md.push_back({a + "attention.head_count", W::u32(static_cast<uint32_t>(cf.num_heads))});
  if (cf.family != Family::kGpt2 && cf.family != Family::kGptNeoX)
    md.push_back({a + "attention.head_count_kv", W::u32(static_cast<uint32_t>(cf.num_kv_heads))});
  if (cf.head_dim * cf.num_heads != cf.hidden_size) {
    md.push_back({a + "attention.key_length", W::u32(static_cast<uint32_t>(cf.head_dim))});
    md.push_back({a + "attention.value_length", W::u32(static_cast<uint32_t>(cf.head_dim))});
  }
  if (cf.layer_norm) {
    md.push_back({a + "attention.layer_norm_epsilon", W::f32(static_cast<float>(cf.norm_eps))});
  } else {
    md.push_back({a + "attention.layer_norm_rms_epsilon", W::f32(static_cast<float>(cf.norm_eps))});
  }
  if (cf.family != Family::kGpt2) {
    md.push_back({a + "rope.freq_base", W::f32(static_cast<float>(cf.rope_theta))});
    md.push_back({a + "rope.dimension_count",
                  W::u32(static_cast<uint32_t>(static_cast<double>(cf.head_dim) * cf.rotary_pct))});
  }
  if (cf.rope_scaling == ModelConfig::RopeScaling::kLinear) {
    md.push_back({a + "rope.scaling.type", W::string("linear")});
    md.push_back({a + "rope.scaling.factor", W::f32(static_cast<float>(cf.rope_factor))});
  }
  if (cf.family == Family::kGptNeoX) md.push_back({"gptneox.use_parallel_residual", W::boolean(cf.parallel_residual)});
  md.push_back({"tokenizer.ggml.model", W::string("gpt2")});
  std::vector<std::string> tokens;
  for (int64_t i = 0; i < cf.vocab_size; ++i) tokens.push_back("t" + std::to_string(i));
  md.push_back({"tokenizer.ggml.tokens", W::string_array(tokens)});
  md.push_back({"tokenizer.ggml.merges", W::string_array({})});
  if (cf.bos_token_id >= 0)
    md.push_back({"tokenizer.ggml.bos_token_id", W::u32(static_cast<uint32_t>(cf.bos_token_id))});
  if (cf.eos_token_id >= 0)
    md.push_back({"tokenizer.ggml.eos_token_id", W::u32(static_cast<uint32_t>(cf.eos_token_id))});

  const auto expected = expected_hf_tensors(cf, "transformer.");
  for (size_t k = 0; k < expected.size(); ++k) {
    const auto& e = expected[k];
    const DType t = e.shape.size() == 1 ? norm_dtype : dtype;
    std::vector<float> v(static_cast<size_t>(shape_numel(e.shape)));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(static_cast<int64_t>(k * 4096 + i)) / 64.0f;
    HfTensor h{e.name, e.shape, encode(v, t)};
    // What the converter stores.
    std::vector<uint8_t> stored = h.bytes;
    std::vector<int64_t> stored_shape = e.shape;
    const size_t row_bytes = e.shape.size() == 2 ? static_cast<size_t>(e.shape[1]) * dtype_size(t) : dtype_size(t);
    auto ends = [&](const char* s) {
      return e.name.size() >= strlen(s) && e.name.substr(e.name.size() - strlen(s)) == s;
    };
    if (cf.family == Family::kLlama && (ends("q_proj.weight") || ends("q_proj.bias"))) {
      stored = llama_permute(stored, row_bytes, cf.num_heads);
    } else if (cf.family == Family::kLlama && (ends("k_proj.weight") || ends("k_proj.bias"))) {
      stored = llama_permute(stored, row_bytes, cf.num_kv_heads);
    } else if (cf.family == Family::kGptNeoX && ends("query_key_value.weight")) {
      stored = neox_regroup(stored, row_bytes, cf.num_heads);
    } else if (cf.family == Family::kGptNeoX && ends("query_key_value.bias")) {
      stored = neox_regroup(stored, row_bytes, cf.num_heads);
    } else if (cf.family == Family::kGpt2 && e.shape.size() == 2 && e.name.find(".h.") != std::string::npos) {
      stored = transpose_bytes(stored, e.shape[0], e.shape[1], dtype_size(t));
      stored_shape = {e.shape[1], e.shape[0]};
    }
    GgufWriteTensor g{gguf_name(cf.family, e.name), ggml_of(t), {stored_shape.rbegin(), stored_shape.rend()},
                      std::move(stored), std::nullopt};
    m.tensors.push_back(g);
    // GPT2Model: the tied output is written as a copy of the embedding.
    if (cf.family == Family::kGpt2 && g.name == "token_embd.weight") {
      g.name = "output.weight";
      m.tensors.push_back(g);
    }
    m.hf.push_back(std::move(h));
  }
  return m;
}

struct FamilyCase {
  const char* name;
  const char* config;
};

inline const std::vector<FamilyCase>& families() {
  static const std::vector<FamilyCase> cases = {
      {"llama-gqa",
       R"({"model_type":"llama","vocab_size":40,"hidden_size":32,"num_hidden_layers":2,"intermediate_size":48,
           "num_attention_heads":4,"num_key_value_heads":2,"rms_norm_eps":1e-5,"max_position_embeddings":128,
           "bos_token_id":1,"eos_token_id":2,"rope_theta":500000.0})"},
      {"llama-biases-headdim",
       R"({"model_type":"llama","vocab_size":40,"hidden_size":32,"num_hidden_layers":2,"intermediate_size":48,
           "num_attention_heads":4,"num_key_value_heads":1,"head_dim":16,"attention_bias":true,"mlp_bias":true,
           "tie_word_embeddings":true,"rope_scaling":{"type":"linear","factor":4.0}})"},
      {"qwen2",
       R"({"model_type":"qwen2","vocab_size":40,"hidden_size":32,"num_hidden_layers":2,"intermediate_size":48,
           "num_attention_heads":4,"num_key_value_heads":2,"tie_word_embeddings":true,"rope_theta":1000000.0,
           "eos_token_id":39})"},
      {"qwen3",
       R"({"model_type":"qwen3","vocab_size":40,"hidden_size":32,"num_hidden_layers":2,"intermediate_size":48,
           "num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,"tie_word_embeddings":true})"},
      {"gpt_neox",
       R"({"model_type":"gpt_neox","vocab_size":40,"hidden_size":32,"num_hidden_layers":2,"intermediate_size":128,
           "num_attention_heads":4,"rotary_pct":0.25,"use_parallel_residual":false,"layer_norm_eps":1e-5})"},
      {"gpt2",
       R"({"model_type":"gpt2","vocab_size":40,"n_embd":32,"n_layer":2,"n_head":4,"n_positions":16})"},
  };
  return cases;
}

// Every field of two configs but the name.
inline void expect_same_config(const ModelConfig& got, const ModelConfig& want) {
  EXPECT_EQ(got.family, want.family);
  EXPECT_EQ(got.vocab_size, want.vocab_size);
  EXPECT_EQ(got.hidden_size, want.hidden_size);
  EXPECT_EQ(got.num_layers, want.num_layers);
  EXPECT_EQ(got.intermediate_size, want.intermediate_size);
  EXPECT_EQ(got.num_heads, want.num_heads);
  EXPECT_EQ(got.num_kv_heads, want.num_kv_heads);
  EXPECT_EQ(got.head_dim, want.head_dim);
  EXPECT_EQ(got.max_position_embeddings, want.max_position_embeddings);
  EXPECT_EQ(got.gated_mlp, want.gated_mlp);
  EXPECT_EQ(got.qkv_bias, want.qkv_bias);
  EXPECT_EQ(got.o_bias, want.o_bias);
  EXPECT_EQ(got.mlp_bias, want.mlp_bias);
  EXPECT_EQ(got.tie_embeddings, want.tie_embeddings);
  EXPECT_EQ(got.qk_norm, want.qk_norm);
  EXPECT_EQ(got.parallel_residual, want.parallel_residual);
  EXPECT_EQ(got.learned_positions, want.learned_positions);
  EXPECT_EQ(got.layer_norm, want.layer_norm);
  EXPECT_EQ(got.rotary_pct, want.rotary_pct);
  EXPECT_EQ(got.activation, want.activation);
  EXPECT_EQ(got.rope_theta, want.rope_theta);
  EXPECT_EQ(got.norm_eps, want.norm_eps);
  EXPECT_EQ(got.rope_scaling, want.rope_scaling);
  EXPECT_EQ(got.rope_factor, want.rope_factor);
  EXPECT_EQ(got.bos_token_id, want.bos_token_id);
  EXPECT_EQ(got.eos_token_id, want.eos_token_id);
}

inline std::string write(const TempDir& dir, const TinyModel& m, const std::string& name = "m.gguf") {
  const std::string path = dir.file(name);
  Status s = write_gguf(path, m.metadata, m.tensors);
  GB_CHECK(s.ok());
  return path;
}

// The error of opening the model as weights, "" when it opens.
inline std::string weights_error(const TempDir& dir, const TinyModel& m) {
  auto w = open_gguf_weights(write(dir, m));
  return w ? "" : w.message();
}

inline GgufWriteTensor* find_tensor(TinyModel& m, const std::string& name) {
  for (auto& t : m.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

inline void set_meta(TinyModel& m, const std::string& key, W v) {
  for (auto& [k, val] : m.metadata)
    if (k == key) {
      val = std::move(v);
      return;
    }
  m.metadata.push_back({key, std::move(v)});
}

inline void erase_meta(TinyModel& m, const std::string& key) {
  std::erase_if(m.metadata, [&](const auto& kv) { return kv.first == key; });
}

}  // namespace gb::engine::gguf_test

// GGUF: tiny models of every family written the way llama.cpp's converter writes
// them (names, reversed dimensions, the llama q/k permutation, GPT-NeoX's regrouped
// qkv, GPT-2's transposed Conv1D weights) read back as the Hugging Face model they
// came from; the metadata getters; every kind of corrupt file giving an error that
// names the file and the problem; and the real llama.cpp files in ../shared/peers
// (skipped where absent).
#include "engine/spec/gguf/gguf_config.h"
#include "engine/spec/gguf/gguf_header.h"
#include "engine/tokenizer/gguf_vocab.h"
#include "engine/weights/gguf/gguf_file.h"
#include "engine/weights/gguf/gguf_weights.h"
#include "engine/weights/gguf/gguf_writer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "engine/weights/hf/hf_checkpoint.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/engine/temp_dir.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using W = GgufWriteValue;

const std::string kPeerDir = std::string(GB_SOURCE_DIR) + "/../shared/peers/llama-gguf";

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

using gb::test_support::TempDir;

// ---- a test-side converter, written from llama.cpp's convert_hf_to_gguf.py ----

// llama.cpp's name of an HF tensor.
std::string gguf_name(Family f, const std::string& hf) {
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
std::vector<uint8_t> rows_from(const std::vector<uint8_t>& in, size_t row_bytes,
                               const std::function<int64_t(int64_t)>& src) {
  std::vector<uint8_t> out(in.size());
  const int64_t rows = static_cast<int64_t>(in.size() / row_bytes);
  for (int64_t r = 0; r < rows; ++r) std::memcpy(out.data() + r * row_bytes, in.data() + src(r) * row_bytes, row_bytes);
  return out;
}

// LlamaModel.permute: w.reshape(n_head, 2, hd/2, *rest).swapaxes(1, 2).reshape(w.shape):
// out[h][i][j] = in[h][j][i] over (head, hd/2, 2) vs (head, 2, hd/2).
std::vector<uint8_t> llama_permute(const std::vector<uint8_t>& in, size_t row_bytes, int64_t n_head) {
  const int64_t rows = static_cast<int64_t>(in.size() / row_bytes), hd = rows / n_head, half = hd / 2;
  return rows_from(in, row_bytes, [=](int64_t r) {
    const int64_t h = r / hd, i = (r % hd) / 2, j = r % 2;
    return h * hd + j * half + i;
  });
}

// GPTNeoXModel: qkv.reshape(n_head, 3, hd, in); cat(qkv[:, 0], qkv[:, 1], qkv[:, 2]).
std::vector<uint8_t> neox_regroup(const std::vector<uint8_t>& in, size_t row_bytes, int64_t n_head) {
  const int64_t rows = static_cast<int64_t>(in.size() / row_bytes), q = rows / 3, hd = q / n_head;
  return rows_from(in, row_bytes, [=](int64_t r) {
    const int64_t j = r / q, h = (r % q) / hd, x = r % hd;
    return (h * 3 + j) * hd + x;
  });
}

std::vector<uint8_t> transpose_bytes(const std::vector<uint8_t>& in, int64_t rows, int64_t cols, size_t esize) {
  std::vector<uint8_t> out(in.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) std::memcpy(&out[(c * rows + r) * esize], &in[(r * cols + c) * esize], esize);
  return out;
}

uint32_t ggml_of(DType t) {
  switch (t) {
    case DType::kF16: return static_cast<uint32_t>(GgmlType::kF16);
    case DType::kBF16: return static_cast<uint32_t>(GgmlType::kBF16);
    default: return static_cast<uint32_t>(GgmlType::kF32);
  }
}

std::vector<uint8_t> encode(const std::vector<float>& v, DType t) {
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
TinyModel convert(const std::string& config_json, DType dtype = DType::kF32, DType norm_dtype = DType::kF32) {
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

const std::vector<FamilyCase>& families() {
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
void expect_same_config(const ModelConfig& got, const ModelConfig& want) {
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

std::string write(const TempDir& dir, const TinyModel& m, const std::string& name = "m.gguf") {
  const std::string path = dir.file(name);
  Status s = write_gguf(path, m.metadata, m.tensors);
  GB_CHECK(s.ok());
  return path;
}

// The error of opening the model as weights, "" when it opens.
std::string weights_error(const TempDir& dir, const TinyModel& m) {
  auto w = open_gguf_weights(write(dir, m));
  return w ? "" : w.message();
}

GgufWriteTensor* find_tensor(TinyModel& m, const std::string& name) {
  for (auto& t : m.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

void set_meta(TinyModel& m, const std::string& key, W v) {
  for (auto& [k, val] : m.metadata)
    if (k == key) {
      val = std::move(v);
      return;
    }
  m.metadata.push_back({key, std::move(v)});
}

void erase_meta(TinyModel& m, const std::string& key) {
  std::erase_if(m.metadata, [&](const auto& kv) { return kv.first == key; });
}

// ---- the families ----

TEST(Gguf, EveryFamilyReadsBackAsTheHfModel) {
  for (const FamilyCase& f : families()) {
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
      SCOPED_TRACE(std::string(f.name) + " " + std::string(dtype_name(dtype)));
      TempDir dir;
      const TinyModel m = convert(f.config, dtype);
      const std::string path = write(dir, m);

      auto config = gguf_model_config(path);
      ASSERT_TRUE(config.ok()) << config.message();
      EXPECT_EQ(config->name, path);
      expect_same_config(*config, m.config);

      auto w = open_gguf_weights(path);
      ASSERT_TRUE(w.ok()) << w.message();
      EXPECT_EQ((*w)->describe(), "gguf:" + path);
      expect_same_config((*w)->config(), m.config);
      uint64_t bytes = 0;
      for (const HfTensor& h : m.hf) {
        auto v = (*w)->tensor(h.name);
        ASSERT_TRUE(v.ok()) << v.message();
        EXPECT_EQ(v->shape, h.shape) << h.name;
        EXPECT_EQ(v->dtype, h.shape.size() == 1 ? DType::kF32 : dtype) << h.name;
        ASSERT_EQ(v->nbytes(), h.bytes.size()) << h.name;
        EXPECT_EQ(std::memcmp(v->data, h.bytes.data(), h.bytes.size()), 0) << h.name << " differs from the HF tensor";
        bytes += h.bytes.size();
        // Asking again gives the same bytes (owned buffers are made once).
        EXPECT_EQ((*w)->tensor(h.name)->data, v->data);
      }
      EXPECT_EQ((*w)->parameter_bytes(), bytes);
      if (m.config.tie_embeddings) {
        const std::string head = m.config.family == Family::kGptNeoX ? "embed_out.weight" : "lm_head.weight";
        auto head_view = (*w)->tensor(head);
        ASSERT_TRUE(head_view.ok()) << head_view.message();
        EXPECT_EQ(head_view->data, (*w)->tensor(m.hf[0].name)->data);
      }
      auto none = (*w)->tensor("model.nope");
      ASSERT_FALSE(none.ok());
      EXPECT_HAS(none.message(), path + ": the model has no tensor 'model.nope'");
      // Its tokenizer ("t0".."t39", no merges) is there.
      ASSERT_NE((*w)->tokenizer(), nullptr);
      EXPECT_EQ((*w)->tokenizer()->token_id("t7"), 7);
    }
  }
}

TEST(Gguf, UntransformedTensorsAreViewsOfTheMapping) {
  TempDir dir;
  const TinyModel m = convert(families()[2].config);  // qwen2: nothing is rearranged
  auto w = open_gguf_weights(write(dir, m));
  ASSERT_TRUE(w.ok()) << w.message();
  auto q = (*w)->tensor("model.layers.1.self_attn.q_proj.weight");
  auto b = (*w)->tensor("model.layers.1.self_attn.q_proj.bias");
  ASSERT_TRUE(q.ok() && b.ok());
  // Consecutive tensors of the file lie at aligned offsets of one mapping.
  const auto* qp = static_cast<const uint8_t*>(q->data);
  const auto* bp = static_cast<const uint8_t*>(b->data);
  EXPECT_EQ(bp - qp, 32 * 32 * 4);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(qp) % 32, 0u);
}

TEST(Gguf, LlamaQkRowsAreUnpermutedExactly) {
  // One head of dimension 8, one input column: HF rows 0..7; llama.cpp's permute
  // stores them as 0 4 1 5 2 6 3 7 (the halves interleaved).
  TinyModel m = convert(families()[0].config);
  GgufWriteTensor* q = find_tensor(m, "blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  // head_dim 8, 4 heads, 32 inputs: check the first input column of head 0.
  std::vector<float> stored(32 * 32);
  std::memcpy(stored.data(), q->bytes.data(), q->bytes.size());
  std::vector<float> col;
  for (int r = 0; r < 8; ++r) col.push_back(stored[r * 32]);
  const HfTensor* hf = nullptr;
  for (const HfTensor& h : m.hf)
    if (h.name == "model.layers.0.self_attn.q_proj.weight") hf = &h;
  ASSERT_NE(hf, nullptr);
  auto hf_row = [&](int r) {  // element (r, 0) of the HF matrix
    float x;
    std::memcpy(&x, hf->bytes.data() + r * 32 * 4, 4);
    return x;
  };
  const int order[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  for (int r = 0; r < 8; ++r) EXPECT_EQ(col[r], hf_row(order[r])) << "stored row " << r;

  TempDir dir;
  auto w = open_gguf_weights(write(dir, m));
  ASSERT_TRUE(w.ok()) << w.message();
  auto v = (*w)->tensor("model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(v.ok());
  const std::vector<float> got = to_f32(*v);
  for (int r = 0; r < 32; ++r) EXPECT_EQ(got[r * 32], hf_row(r)) << "HF row " << r;
}

TEST(Gguf, NamesMapToHuggingFace) {
  EXPECT_EQ(gguf_to_hf_name(Family::kLlama, "blk.11.attn_q.weight"), "model.layers.11.self_attn.q_proj.weight");
  EXPECT_EQ(gguf_to_hf_name(Family::kQwen3, "blk.0.attn_k_norm.weight"), "model.layers.0.self_attn.k_norm.weight");
  EXPECT_EQ(gguf_to_hf_name(Family::kQwen2, "output.weight"), "lm_head.weight");
  EXPECT_EQ(gguf_to_hf_name(Family::kGptNeoX, "blk.3.attn_qkv.bias"),
            "gpt_neox.layers.3.attention.query_key_value.bias");
  EXPECT_EQ(gguf_to_hf_name(Family::kGptNeoX, "output.weight"), "embed_out.weight");
  EXPECT_EQ(gguf_to_hf_name(Family::kGpt2, "position_embd.weight"), "transformer.wpe.weight");
  EXPECT_EQ(gguf_to_hf_name(Family::kGpt2, "blk.2.ffn_down.weight"), "transformer.h.2.mlp.c_proj.weight");
  EXPECT_EQ(gguf_to_hf_name(Family::kLlama, "blk.01.attn_q.weight"), "");
  EXPECT_EQ(gguf_to_hf_name(Family::kLlama, "blk.x.attn_q.weight"), "");
  EXPECT_EQ(gguf_to_hf_name(Family::kLlama, "blk.0.attn_qkv.weight"), "");
  EXPECT_EQ(gguf_to_hf_name(Family::kLlama, "position_embd.weight"), "");
  EXPECT_EQ(gguf_to_hf_name(Family::kLlama, "rope_freqs.weight"), "");
}

TEST(Gguf, Gpt2WithASeparateHeadIsUntied) {
  TempDir dir;
  TinyModel m = convert(families()[5].config);
  GgufWriteTensor* out = find_tensor(m, "output.weight");
  ASSERT_NE(out, nullptr);
  out->bytes[0] ^= 1;  // no longer a copy of the embedding
  auto w = open_gguf_weights(write(dir, m));
  ASSERT_TRUE(w.ok()) << w.message();
  EXPECT_FALSE((*w)->config().tie_embeddings);
  auto head = (*w)->tensor("lm_head.weight");
  ASSERT_TRUE(head.ok());
  EXPECT_NE(head->data, (*w)->tensor("transformer.wte.weight")->data);
  // And without any output.weight, tied.
  std::erase_if(m.tensors, [](const GgufWriteTensor& t) { return t.name == "output.weight"; });
  auto c = gguf_model_config(write(dir, m, "tied.gguf"));
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_TRUE(c->tie_embeddings);
}

TEST(Gguf, ResolveModelReadsTheMetadata) {
  TempDir dir;
  const std::string path = write(dir, convert(families()[3].config));
  auto c = resolve_model("gguf:" + path);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->name, "gguf:" + path);
  EXPECT_EQ(c->family, Family::kQwen3);
  auto bad = resolve_model("gguf:" + dir.file("absent.gguf"));
  ASSERT_FALSE(bad.ok());
  EXPECT_HAS(bad.message(), "absent.gguf: cannot open");
}

// ---- metadata ----

TEST(Gguf, MetadataGettersCheckTypes) {
  const std::string bytes = gguf_file_bytes(
      {{"a.u8", {GgufValueType::kUint8, GgufValueType::kUint8, {200}, {}, {}, {}}},
       {"a.i8", {GgufValueType::kInt8, GgufValueType::kInt8, {}, {-5}, {}, {}}},
       {"a.u16", {GgufValueType::kUint16, GgufValueType::kUint16, {65535}, {}, {}, {}}},
       {"a.i16", {GgufValueType::kInt16, GgufValueType::kInt16, {}, {-300}, {}, {}}},
       {"a.u32", W::u32(4000000000u)},
       {"a.i32", W::i32(-7)},
       {"a.u64", W::u64(~uint64_t{0})},
       {"a.i64", {GgufValueType::kInt64, GgufValueType::kInt64, {}, {INT64_MIN}, {}, {}}},
       {"a.f32", W::f32(1e-5f)},
       {"a.f64", W::f64(0.1)},
       {"a.bool", W::boolean(true)},
       {"a.str", W::string("héllo")},
       {"a.strs", W::string_array({"x", "", "zz"})},
       {"a.ints", W::i32_array({1, -2, 3})},
       {"a.floats", W::f32_array({0.5f, 1e-6f})},
       {"a.bools", {GgufValueType::kArray, GgufValueType::kBool, {1, 0}, {}, {}, {}}}},
      {});
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "m.gguf");
  ASSERT_TRUE(h.ok()) << h.message();
  EXPECT_EQ(h->version, 3u);
  EXPECT_EQ(h->metadata.size(), 16u);
  EXPECT_EQ(*h->get_int("a.u8"), 200);
  EXPECT_EQ(*h->get_int("a.i8"), -5);
  EXPECT_EQ(*h->get_int("a.u16"), 65535);
  EXPECT_EQ(*h->get_int("a.i16"), -300);
  EXPECT_EQ(*h->get_int("a.u32"), 4000000000);
  EXPECT_EQ(*h->get_int("a.i32"), -7);
  EXPECT_EQ(*h->get_int("a.i64"), INT64_MIN);
  EXPECT_EQ(h->find("a.u64")->as_uint(), ~uint64_t{0});
  auto big = h->get_int("a.u64");
  ASSERT_FALSE(big.ok());
  EXPECT_HAS(big.message(), "m.gguf: metadata key 'a.u64' = 18446744073709551615 does not fit");
  EXPECT_EQ(*h->get_float("a.f32"), 1e-5);  // the float's shortest decimal, not 9.99999974e-06
  EXPECT_EQ(*h->get_float("a.f64"), 0.1);
  EXPECT_TRUE(*h->get_bool("a.bool"));
  EXPECT_EQ(*h->get_string("a.str"), "héllo");
  EXPECT_EQ(*h->get_string_array("a.strs"), (std::vector<std::string_view>{"x", "", "zz"}));
  EXPECT_EQ(*h->get_int_array("a.ints"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(*h->get_float_array("a.floats"), (std::vector<double>{0.5, 1e-6}));
  EXPECT_EQ(h->find("a.bools")->type_description(), "array of bool");
  EXPECT_EQ(h->find("a.bools")->size(), 2u);

  auto wrong = h->get_int("a.str");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.message(), "m.gguf: metadata key 'a.str' is string, expected an integer");
  EXPECT_EQ(h->get_string("a.ints").message(), "m.gguf: metadata key 'a.ints' is array of i32, expected a string");
  EXPECT_EQ(h->get_float("a.i32").message(), "m.gguf: metadata key 'a.i32' is i32, expected f32 or f64");
  EXPECT_EQ(h->get_bool("a.u8").message(), "m.gguf: metadata key 'a.u8' is u8, expected a bool");
  EXPECT_EQ(h->get_string_array("a.ints").message(),
            "m.gguf: metadata key 'a.ints' is array of i32, expected an array of string");
  EXPECT_EQ(h->get_int_array("a.strs").message(),
            "m.gguf: metadata key 'a.strs' is array of string, expected an array of integers");
  EXPECT_EQ(h->get_int("a.missing").message(), "m.gguf: missing metadata key 'a.missing' (an integer)");
  EXPECT_EQ(*h->get_int("a.missing", 9), 9);
  EXPECT_EQ(*h->get_string("a.missing", "d"), "d");
  EXPECT_FALSE(h->get_int("a.str", 9).ok());  // present with the wrong type
  EXPECT_EQ(h->alignment, 32u);
  EXPECT_EQ(h->data_start % 32, 0u);
}

TEST(Gguf, GgmlTypeSizes) {
  struct Row {
    GgmlType t;
    const char* name;
    uint32_t block, size;
  };
  for (const Row& r : {Row{GgmlType::kF32, "F32", 1, 4}, Row{GgmlType::kF16, "F16", 1, 2},
                       Row{GgmlType::kBF16, "BF16", 1, 2}, Row{GgmlType::kQ4_0, "Q4_0", 32, 18},
                       Row{GgmlType::kQ4_1, "Q4_1", 32, 20}, Row{GgmlType::kQ5_0, "Q5_0", 32, 22},
                       Row{GgmlType::kQ5_1, "Q5_1", 32, 24}, Row{GgmlType::kQ8_0, "Q8_0", 32, 34},
                       Row{GgmlType::kQ8_1, "Q8_1", 32, 36}, Row{GgmlType::kQ2_K, "Q2_K", 256, 84},
                       Row{GgmlType::kQ3_K, "Q3_K", 256, 110}, Row{GgmlType::kQ4_K, "Q4_K", 256, 144},
                       Row{GgmlType::kQ5_K, "Q5_K", 256, 176}, Row{GgmlType::kQ6_K, "Q6_K", 256, 210},
                       Row{GgmlType::kQ8_K, "Q8_K", 256, 292}, Row{GgmlType::kIQ4_NL, "IQ4_NL", 32, 18},
                       Row{GgmlType::kIQ4_XS, "IQ4_XS", 256, 136}, Row{GgmlType::kI8, "I8", 1, 1},
                       Row{GgmlType::kI64, "I64", 1, 8}, Row{GgmlType::kF64, "F64", 1, 8}}) {
    const GgmlTypeTraits* t = ggml_type_traits(static_cast<uint32_t>(r.t));
    ASSERT_NE(t, nullptr) << r.name;
    EXPECT_EQ(t->name, r.name);
    EXPECT_EQ(t->block_size, r.block) << r.name;
    EXPECT_EQ(t->type_size, r.size) << r.name;
  }
  EXPECT_EQ(ggml_type_traits(4), nullptr);  // Q4_2, removed
  EXPECT_EQ(ggml_type_name(4), "type 4");
  EXPECT_EQ(ggml_type_traits(1000), nullptr);
}

// ---- corrupt files ----

std::string parse_error(const std::string& bytes) {
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "bad.gguf");
  return h ? "" : h.message();
}

// A small valid file: two keys, two F32 tensors.
std::string small_file() {
  return gguf_file_bytes({{"general.architecture", W::string("llama")}, {"x.n", W::u32(3)}},
                         {{"a", static_cast<uint32_t>(GgmlType::kF32), {4, 2}, std::vector<uint8_t>(32, 1), {}},
                          {"b", static_cast<uint32_t>(GgmlType::kF32), {3}, std::vector<uint8_t>(12, 2), {}}});
}

void put_u64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}
void put_u32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

TEST(GgufErrors, EveryTruncationIsAnError) {
  const std::string full = small_file();
  ASSERT_EQ(parse_error(full), "");
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(full.data()), full.size(), "f");
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(full.size(), h->data_start + 32 + 12);  // a at 0, b at 32
  for (size_t n = 0; n < full.size(); ++n) {
    // Cutting into the padding before the last tensor's bytes still loses them.
    const std::string e = parse_error(full.substr(0, n));
    ASSERT_NE(e, "") << "prefix of " << n << " bytes parsed";
    ASSERT_EQ(e.rfind("bad.gguf: ", 0), 0u) << e;
  }
  EXPECT_HAS(parse_error(full.substr(0, 3)), "file is 3 bytes, too short for the GGUF magic");
  EXPECT_HAS(parse_error(full.substr(0, 6)), "file truncated: the version at byte 4 needs 4 bytes");
  EXPECT_HAS(parse_error(full.substr(0, 20)), "file truncated: the metadata count at byte 16 needs 8 bytes");
}

TEST(GgufErrors, TruncationMessagesSayWhere) {
  const std::string full = small_file();
  // 24 bytes of header; the counts are checked against what is left first.
  EXPECT_HAS(parse_error(full.substr(0, 24)), "metadata count 2 cannot fit in the 0 bytes after the header");
  // The metadata takes bytes [24, 88); tensor 'a' starts with its name (9 bytes)
  // and dimension count, then ne[0] at byte 101.
  EXPECT_HAS(parse_error(full.substr(0, 108)),
             "file truncated: dimension 0 of tensor 'a' at byte 101 needs 8 bytes but the file ends after 7");
  const std::string one_key = gguf_file_bytes({{"x.n", W::u32(7)}}, {});  // key at 24, type at 35, value at 39
  EXPECT_HAS(parse_error(one_key.substr(0, 40)),
             "bad.gguf: file truncated: metadata key 'x.n' (u32) at byte 39 needs 4 bytes but the file ends after 1");
  EXPECT_HAS(parse_error(one_key.substr(0, 38)), "file truncated: the value type of metadata key 'x.n' at byte 35");
  EXPECT_HAS(parse_error(full.substr(0, full.size() - 1)),
             "tensor 'b': bytes [32, 44) of the data section are beyond the end of the file");
}

TEST(GgufErrors, BadMagicAndVersions) {
  std::string s = small_file();
  s[3] = 'X';
  EXPECT_EQ(parse_error(s), "bad.gguf: bad magic 'GGUX' (expected 'GGUF'): not a GGUF file");
  for (auto [version, message] : std::vector<std::pair<uint32_t, std::string>>{
           {1, "GGUF version 1 is not supported"},
           {4, "unsupported GGUF version 4 (versions 2 and 3 are supported)"},
           {0x03000000u, "a big-endian GGUF file (version 3)"}}) {
    std::string v = small_file();
    put_u32(v, 4, version);
    EXPECT_HAS(parse_error(v), message);
  }
  std::string v2 = small_file();
  put_u32(v2, 4, 2);
  EXPECT_EQ(parse_error(v2), "");  // version 2 has the same little-endian layout
}

TEST(GgufErrors, HugeCountsAndLengthsAreRefusedBeforeAllocating) {
  std::string s = small_file();
  put_u64(s, 8, uint64_t{1} << 62);
  EXPECT_HAS(parse_error(s), "tensor count 4611686018427387904 cannot fit");
  s = small_file();
  put_u64(s, 16, ~uint64_t{0});
  EXPECT_HAS(parse_error(s), "metadata count 18446744073709551615 cannot fit");
  s = small_file();
  put_u64(s, 24, uint64_t{1} << 60);  // the first key's length
  EXPECT_HAS(parse_error(s), "string length 1152921504606846976 at byte 24 is larger than the");
  // A huge array.
  std::string a = gguf_file_bytes({{"k", W::i32_array({1, 2})}}, {});
  put_u64(a, 24 + 8 + 1 + 4 + 4, uint64_t{1} << 61);
  EXPECT_HAS(parse_error(a), "metadata key 'k': array of 2305843009213693952 i32 at byte 41 cannot fit");
  std::string sa = gguf_file_bytes({{"k", W::string_array({"a"})}}, {});
  put_u64(sa, 24 + 8 + 1 + 4 + 4, uint64_t{1} << 40);
  EXPECT_HAS(parse_error(sa), "array of 1099511627776 string");
}

TEST(GgufErrors, BadValues) {
  std::string s = gguf_file_bytes({{"k", W::u32(1)}}, {});
  put_u32(s, 24 + 8 + 1, 13);
  EXPECT_HAS(parse_error(s), "metadata key 'k': unknown value type 13 at byte 33");
  s = gguf_file_bytes({{"k", W::boolean(true)}}, {});
  s[24 + 8 + 1 + 4] = 2;
  EXPECT_HAS(parse_error(s), "metadata key 'k': bool at byte 37 is 2, not 0 or 1");
  s = gguf_file_bytes({{"k", W::i32_array({1})}}, {});
  put_u32(s, 24 + 8 + 1 + 4, 9);
  EXPECT_HAS(parse_error(s), "metadata key 'k': arrays of arrays are not supported");
  put_u32(s, 24 + 8 + 1 + 4, 99);
  EXPECT_HAS(parse_error(s), "unknown array element type 99");
  EXPECT_HAS(parse_error(gguf_file_bytes({{"k", W::u32(1)}, {"k", W::u32(2)}}, {})), "duplicate metadata key 'k'");
  EXPECT_HAS(parse_error(gguf_file_bytes({{"", W::u32(1)}}, {})), "metadata entry 0 at byte 24 has an empty key");
  EXPECT_HAS(parse_error(gguf_file_bytes({{"general.alignment", W::u64(32)}}, {})),
             "metadata key 'general.alignment' is u64, expected u32");
  EXPECT_HAS(parse_error(gguf_file_bytes({{"general.alignment", W::u32(48)}}, {})),
             "general.alignment 48 is not a power of two");
  EXPECT_HAS(parse_error(gguf_file_bytes({{"general.alignment", W::u32(0)}}, {})), "general.alignment 0 is not");
}

TEST(GgufErrors, BadTensorInfos) {
  const uint32_t f32 = static_cast<uint32_t>(GgmlType::kF32);
  auto one = [&](GgufWriteTensor t) { return parse_error(gguf_file_bytes({}, {std::move(t)})); };
  EXPECT_HAS(parse_error(gguf_file_bytes({}, {{"a", f32, {2}, std::vector<uint8_t>(8), {}},
                                              {"a", f32, {2}, std::vector<uint8_t>(8), {}}})),
             "duplicate tensor name 'a'");
  EXPECT_HAS(one({"", f32, {2}, std::vector<uint8_t>(8), {}}), "tensor info 0 at byte 24 has an empty name");
  EXPECT_HAS(one({std::string(64, 'n'), f32, {2}, std::vector<uint8_t>(8), {}}),
             "the name is 64 bytes, longer than the limit of 63");
  EXPECT_HAS(one({"a", f32, {1, 1, 1, 1, 1}, std::vector<uint8_t>(4), {}}), "tensor 'a': 5 dimensions (1 to 4");
  EXPECT_HAS(one({"a", f32, {}, {}, {}}), "tensor 'a': 0 dimensions");
  EXPECT_HAS(one({"a", f32, {2, -1}, {}, {}}), "tensor 'a': dimension 1 is negative (-1)");
  EXPECT_HAS(one({"a", 4, {2}, std::vector<uint8_t>(8), {}}), "tensor 'a': unknown ggml type 4");
  EXPECT_HAS(one({"a", static_cast<uint32_t>(GgmlType::kQ4_0), {48}, std::vector<uint8_t>(36), {}}),
             "tensor 'a': row length ne[0] = 48 is not a multiple of Q4_0's block size 32");
  EXPECT_HAS(one({"a", f32, {int64_t{1} << 40, int64_t{1} << 30}, {}, {}}), "larger than fits in 63 bits");
  EXPECT_HAS(one({"a", f32, {int64_t{1} << 31, int64_t{1} << 31, 4}, {}, {}}), "larger than fits in 63 bits");
  EXPECT_HAS(one({"a", f32, {2}, std::vector<uint8_t>(8), 4}),
             "tensor 'a': offset 4 is not a multiple of the alignment 32");
  EXPECT_HAS(one({"a", f32, {2}, {}, 64}),
             "tensor 'a': bytes [64, 72) of the data section are beyond the end of the file");
  EXPECT_HAS(one({"a", f32, {int64_t{1} << 40}, {}, {}}), "tensor 'a': bytes [0, 4398046511104) of the data section");
  EXPECT_HAS(parse_error(gguf_file_bytes({}, {{"a", f32, {16}, std::vector<uint8_t>(64), 0},
                                              {"b", f32, {16}, std::vector<uint8_t>(64), 32}})),
             "tensor 'b' at offset 32 overlaps tensor 'a' (bytes [0, 64))");
  // Zero-size tensors may share an offset; a quantized tensor's size is in blocks.
  EXPECT_EQ(parse_error(gguf_file_bytes({}, {{"a", f32, {0, 3}, {}, 0}, {"b", f32, {0}, {}, 0}})), "");
  auto q =
      gguf_file_bytes({}, {{"q", static_cast<uint32_t>(GgmlType::kQ4_K), {512, 3}, std::vector<uint8_t>(864), {}}});
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(q.data()), q.size(), "q");
  ASSERT_TRUE(h.ok()) << h.message();
  EXPECT_EQ(h->tensors[0].nbytes, 2u * 144u * 3u);
  EXPECT_EQ(h->tensors[0].shape, (std::vector<int64_t>{3, 512}));
  // Names in messages are escaped.
  EXPECT_HAS(one({"a\nb", f32, {2}, {}, 64}), "tensor 'a\\x0ab'");
}

TEST(GgufErrors, CustomAlignment) {
  const uint32_t f32 = static_cast<uint32_t>(GgmlType::kF32);
  const std::string s =
      gguf_file_bytes({{"general.alignment", W::u32(64)}},
                      {{"a", f32, {3}, std::vector<uint8_t>(12), {}}, {"b", f32, {3}, std::vector<uint8_t>(12), {}}});
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(s.data()), s.size(), "a.gguf");
  ASSERT_TRUE(h.ok()) << h.message();
  EXPECT_EQ(h->alignment, 64u);
  EXPECT_EQ(h->data_start % 64, 0u);
  EXPECT_EQ(h->tensors[1].offset, 64u);
  EXPECT_HAS(parse_error(gguf_file_bytes({{"general.alignment", W::u32(64)}},
                                         {{"a", f32, {3}, std::vector<uint8_t>(12), 32}})),
             "offset 32 is not a multiple of the alignment 64");
}

TEST(GgufErrors, FilesThatCannotBeOpened) {
  TempDir dir;
  auto f = GgufFile::open(dir.file("absent.gguf"));
  ASSERT_FALSE(f.ok());
  EXPECT_HAS(f.message(), "absent.gguf: cannot open: No such file or directory");
  auto d = GgufFile::open(dir.file(""));
  ASSERT_FALSE(d.ok());
  EXPECT_HAS(d.message(), "not a regular file");
  std::ofstream(dir.file("empty.gguf")).close();
  auto e = GgufFile::open(dir.file("empty.gguf"));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.message(), dir.file("empty.gguf") + ": file is 0 bytes, too short for the GGUF magic (not a GGUF file)");
}

// ---- config and weight errors ----

TEST(GgufErrors, ConfigProblemsNameTheKey) {
  TempDir dir;
  auto config_error = [&](const TinyModel& m) {
    auto c = gguf_model_config(write(dir, m));
    return c ? "" : c.message();
  };
  TinyModel m = convert(families()[0].config);
  erase_meta(m, "llama.block_count");
  set_meta(m, "llama.embedding_length", W::string("32"));
  const std::string e = config_error(m);
  EXPECT_HAS(e, dir.file("m.gguf") + ": ");
  EXPECT_HAS(e, "metadata key 'llama.embedding_length' is string, expected an integer");
  EXPECT_HAS(e, "missing metadata key 'llama.block_count'");

  m = convert(families()[0].config);
  set_meta(m, "general.architecture", W::string("mamba"));
  EXPECT_HAS(config_error(m),
             "unsupported general.architecture 'mamba' (supported: llama, qwen2, qwen3, gptneox, gpt2)");
  m = convert(families()[0].config);
  erase_meta(m, "general.architecture");
  EXPECT_HAS(config_error(m), "missing metadata key 'general.architecture'");
  m = convert(families()[0].config);
  set_meta(m, "llama.attention.head_count_kv", W::u32(3));
  EXPECT_HAS(config_error(m), "llama.attention.head_count 4 is not a multiple of llama.attention.head_count_kv 3");
  m = convert(families()[0].config);
  set_meta(m, "llama.attention.head_count", W::u32(0));
  EXPECT_HAS(config_error(m), "metadata key 'llama.attention.head_count' = 0 is out of range");
  m = convert(families()[0].config);
  set_meta(m, "llama.rope.scaling.type", W::string("yarn"));
  EXPECT_HAS(config_error(m), "llama.rope.scaling.type 'yarn' is not supported (none, linear)");
  m = convert(families()[0].config);
  set_meta(m, "llama.rope.dimension_count", W::u32(4));
  EXPECT_HAS(config_error(m), "partial rotary is supported for gptneox only");
  m = convert(families()[0].config);
  set_meta(m, "llama.attention.layer_norm_rms_epsilon", W::f32(-1.0f));
  EXPECT_HAS(config_error(m), "'llama.attention.layer_norm_rms_epsilon' must be a positive number");
  m = convert(families()[0].config);
  set_meta(m, "tokenizer.ggml.tokens", W::string_array({"a", "b"}));
  EXPECT_HAS(config_error(m), "tokenizer.ggml.tokens has 2 tokens but token_embd.weight has 40 rows");
  m = convert(families()[0].config);
  set_meta(m, "tokenizer.ggml.eos_token_id", W::u32(40));
  EXPECT_HAS(config_error(m), "tokenizer.ggml.eos_token_id 40 is outside the vocabulary of 40");
  m = convert(families()[0].config);
  std::erase_if(m.tensors, [](const GgufWriteTensor& t) { return t.name == "token_embd.weight"; });
  EXPECT_HAS(config_error(m), "no tensor 'token_embd.weight'");
  // The older rope.scale_linear key, and linear scaling with factor 1 being none.
  m = convert(families()[0].config);
  set_meta(m, "llama.rope.scale_linear", W::f32(2.0f));
  auto c = gguf_model_config(write(dir, m));
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->rope_scaling, ModelConfig::RopeScaling::kLinear);
  EXPECT_EQ(c->rope_factor, 2.0);
  set_meta(m, "llama.rope.scaling.type", W::string("none"));
  c = gguf_model_config(write(dir, m));
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->rope_scaling, ModelConfig::RopeScaling::kNone);
}

// The factors llama.cpp's converter writes for "rope_type": "llama3".
std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  std::vector<float> out;
  const double low_wavelen = c.rope_original_max_positions / c.rope_low_freq_factor;
  const double high_wavelen = c.rope_original_max_positions / c.rope_high_freq_factor;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    const double freq = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / static_cast<double>(c.head_dim));
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(static_cast<float>(c.rope_factor));
    } else {
      const double smooth = (c.rope_original_max_positions / wavelen - c.rope_low_freq_factor) /
                            (c.rope_high_freq_factor - c.rope_low_freq_factor);
      out.push_back(static_cast<float>(1 / ((1 - smooth) / c.rope_factor + smooth)));
    }
  }
  return out;
}

TEST(Gguf, RopeFreqsBecomeLlama3Scaling) {
  TempDir dir;
  TinyModel m = convert(R"({"model_type":"llama","vocab_size":40,"hidden_size":128,"num_hidden_layers":1,
      "intermediate_size":64,"num_attention_heads":2,"num_key_value_heads":1,"rope_theta":500000.0,
      "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
                      "original_max_position_embeddings":8192}})");
  ASSERT_EQ(m.config.rope_scaling, ModelConfig::RopeScaling::kLlama3);
  const std::vector<float> factors = llama3_rope_factors(m.config);
  m.tensors.push_back(
      {"rope_freqs.weight", static_cast<uint32_t>(GgmlType::kF32), {32}, encode(factors, DType::kF32), {}});
  const std::string path = write(dir, m);
  auto c = gguf_model_config(path);
  ASSERT_TRUE(c.ok()) << c.message();
  expect_same_config(*c, m.config);
  EXPECT_EQ(c->rope_low_freq_factor, 1.0);
  EXPECT_EQ(c->rope_high_freq_factor, 4.0);
  EXPECT_EQ(c->rope_original_max_positions, 8192);
  auto w = open_gguf_weights(path);  // rope_freqs.weight is not a parameter
  ASSERT_TRUE(w.ok()) << w.message();

  // Other llama3 parameters are recovered the same way.
  m.config.rope_factor = 32;
  m.config.rope_low_freq_factor = 2;
  m.config.rope_high_freq_factor = 16;
  m.tensors.back().bytes = encode(llama3_rope_factors(m.config), DType::kF32);
  c = gguf_model_config(write(dir, m));
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->rope_factor, 32.0);
  EXPECT_EQ(c->rope_low_freq_factor, 2.0);
  EXPECT_EQ(c->rope_high_freq_factor, 16.0);

  // All ones: no scaling.
  m.tensors.back().bytes = encode(std::vector<float>(32, 1.0f), DType::kF32);
  c = gguf_model_config(write(dir, m));
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->rope_scaling, ModelConfig::RopeScaling::kNone);
}

TEST(GgufErrors, RopeFreqsThatAreNotLlama3AreRefused) {
  TempDir dir;
  TinyModel m = convert(families()[0].config);  // head_dim 8: 4 factors
  m.tensors.push_back({"rope_freqs.weight", static_cast<uint32_t>(GgmlType::kF32), {4},
                       encode({1.0f, 1.0f, 2.5f, 8.0f}, DType::kF32), {}});
  EXPECT_HAS(weights_error(dir, m),
             "tensor 'rope_freqs.weight' holds rope factors that are not Llama 3.1-style rope scaling (fewer than two "
             "blended factors to recover it from)");
  m.tensors.back().bytes = encode({1.0f, 3.0f, 2.0f, 8.0f}, DType::kF32);
  EXPECT_HAS(weights_error(dir, m), "holds rope factors that are not Llama 3.1-style rope scaling (recovered");
  m.tensors.back().bytes = encode({1.0f, 0.5f, 1.0f, 1.0f}, DType::kF32);
  EXPECT_HAS(weights_error(dir, m), "tensor 'rope_freqs.weight' factor 1 is 0.500000 (rope factors are >= 1)");
  m.tensors.back().ne = {3};
  m.tensors.back().bytes.resize(12);
  EXPECT_HAS(weights_error(dir, m), "tensor 'rope_freqs.weight' has 3 factors, expected head_dim / 2 = 4");
}

TEST(GgufErrors, MissingUnexpectedAndMisshapedTensors) {
  TempDir dir;
  TinyModel m = convert(families()[0].config);
  std::erase_if(m.tensors, [](const GgufWriteTensor& t) { return t.name == "blk.1.ffn_up.weight"; });
  m.tensors.push_back(
      {"blk.0.ffn_gate_inp.weight", static_cast<uint32_t>(GgmlType::kF32), {2}, std::vector<uint8_t>(8), {}});
  m.tensors.push_back({"blk.7.attn_q.weight", static_cast<uint32_t>(GgmlType::kF32), {2}, std::vector<uint8_t>(8), {}});
  const std::string path = dir.file("m.gguf");
  const std::string e = weights_error(dir, m);
  EXPECT_HAS(e, path + ": missing tensor 'blk.1.ffn_up.weight' (model.layers.1.mlp.up_proj.weight [48, 32])");
  EXPECT_HAS(
      e,
      "unexpected tensors 'blk.0.ffn_gate_inp.weight'; 'blk.7.attn_q.weight' (model.layers.7.self_attn.q_proj.weight) "
      "(not a llama parameter for this file's metadata)");

  m = convert(families()[0].config);
  find_tensor(m, "blk.0.attn_k.weight")->ne = {32, 8};
  find_tensor(m, "blk.0.attn_k.weight")->bytes.resize(32 * 8 * 4);
  EXPECT_HAS(weights_error(dir, m), "tensor 'blk.0.attn_k.weight' has shape [8, 32] but the metadata implies [16, 32]");

  m = convert(families()[5].config);  // GPT-2: shapes are reported as stored
  find_tensor(m, "blk.1.ffn_up.weight")->ne = {32, 64};
  EXPECT_HAS(weights_error(dir, m),
             "tensor 'blk.1.ffn_up.weight' has shape [64, 32] but the metadata implies [128, 32]");

  m = convert(families()[0].config);
  GgufWriteTensor* norm = find_tensor(m, "blk.0.attn_norm.weight");
  norm->type = static_cast<uint32_t>(GgmlType::kF64);
  norm->bytes.resize(32 * 8);
  EXPECT_HAS(weights_error(dir, m), "tensor 'blk.0.attn_norm.weight' is F64, expected F32, F16 or BF16");
}

TEST(GgufErrors, QuantizedTensorsComeOutPackedAndUnimplementedTypesAreRefused) {
  TempDir dir;
  TinyModel m = convert(families()[0].config);
  GgufWriteTensor* q = find_tensor(m, "blk.0.attn_q.weight");
  q->type = static_cast<uint32_t>(GgmlType::kQ8_0);
  q->bytes.assign(32 * 34, 0);  // 32 rows of one 34-byte block
  q->bytes[0] = 0x00;
  q->bytes[1] = 0x3c;  // block 0: d = 1.0
  q->bytes[2] = 5;     // element 0 = 5
  // ffn_gate is HF [48, 32]: ne [32, 48], 48 rows of one Q4_0 block.
  GgufWriteTensor* g = find_tensor(m, "blk.1.ffn_gate.weight");
  g->type = static_cast<uint32_t>(GgmlType::kQ4_0);
  g->bytes.assign(48 * 18, 0);
  const std::string path = write(dir, m);
  auto w = open_gguf_weights(path);
  ASSERT_TRUE(w.ok()) << w.message();
  auto qv = (*w)->tensor("model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(qv.ok()) << qv.message();
  ASSERT_TRUE(qv->packed.has_value());
  EXPECT_EQ(*qv->packed, kernels::WeightCodec::kQ8_0);
  EXPECT_EQ(qv->nbytes(), 32u * 34u);
  // The q/k row permutation of llama.cpp's converter is undone on whole rows of blocks,
  // so the element written at stored row 0 is in the row the permutation sends it to.
  const std::vector<float> deq = to_f32(*qv);
  int fives = 0;
  for (float v : deq) fives += v == 5.0f;
  EXPECT_EQ(fives, 1);
  EXPECT_TRUE((*w)->tensor("model.layers.0.self_attn.k_proj.weight").ok());
  // The stored bytes, quantized ones included.
  uint64_t bytes = 0;
  for (const auto& t : m.tensors) bytes += t.bytes.size();
  EXPECT_EQ((*w)->parameter_bytes(), bytes);

  // A type gridbench does not implement is refused at open, named with its tensor.
  GgufWriteTensor* iq = find_tensor(m, "blk.0.attn_k.weight");
  iq->type = static_cast<uint32_t>(GgmlType::kIQ4_NL);  // 32-element blocks of 18 bytes
  iq->bytes.assign(16 * 18, 0);
  const std::string bad = write(dir, m);
  auto r = open_gguf_weights(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_HAS(r.message(), bad + ": tensor 'blk.0.attn_k.weight' is IQ4_NL, a GGUF type gridbench does not implement");
  // The config still reads.
  EXPECT_TRUE(gguf_model_config(bad).ok());
}

// ---- the embedded tokenizer ----

TEST(Gguf, TokenizerJsonFollowsThePreTokenizerType) {
  auto doc = [](GgufWriteMetadata extra) {
    GgufWriteMetadata md = {{"tokenizer.ggml.model", W::string("gpt2")},
                            {"tokenizer.ggml.tokens", W::string_array({"a", "b", "ab", "<s>", "<u>"})},
                            {"tokenizer.ggml.token_type", W::i32_array({1, 1, 1, 3, 4})},
                            {"tokenizer.ggml.merges", W::string_array({"a b"})},
                            {"tokenizer.ggml.bos_token_id", W::u32(3)}};
    for (auto& kv : extra) md.push_back(kv);
    const std::string bytes = gguf_file_bytes(md, {});
    auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "t.gguf");
    GB_CHECK(h.ok());
    auto j = gguf_tokenizer_json(*h);
    return j.ok() ? json::parse(*j) : json{{"error", j.message()}};
  };
  json qwen = doc({{"tokenizer.ggml.pre", W::string("qwen2")}});
  EXPECT_EQ(qwen["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"].get<std::string>().substr(0, 8), "(?i:'s|'");
  EXPECT_EQ(qwen["post_processor"]["type"], "ByteLevel");
  EXPECT_EQ(qwen["added_tokens"].size(), 2u);
  EXPECT_EQ(qwen["added_tokens"][0]["special"], true);
  EXPECT_EQ(qwen["added_tokens"][1]["special"], false);
  EXPECT_EQ(qwen["model"]["ignore_merges"], false);
  json llama3 = doc({{"tokenizer.ggml.pre", W::string("llama-bpe")}});
  EXPECT_NE(llama3["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"].get<std::string>().find("\\p{N}{1,3}"),
            std::string::npos);
  EXPECT_EQ(llama3["post_processor"]["type"], "TemplateProcessing");  // llama3 adds BOS by default
  EXPECT_EQ(llama3["model"]["ignore_merges"], true);
  json no_bos =
      doc({{"tokenizer.ggml.pre", W::string("llama-bpe")}, {"tokenizer.ggml.add_bos_token", W::boolean(false)}});
  EXPECT_EQ(no_bos["post_processor"]["type"], "ByteLevel");
  json gpt2 = doc({{"tokenizer.ggml.pre", W::string("gpt-2")}});
  EXPECT_EQ(gpt2["pre_tokenizer"]["use_regex"], true);
  json def = doc({});
  EXPECT_EQ(def["pre_tokenizer"]["pretokenizers"].size(), 5u);
  json bad = doc({{"tokenizer.ggml.pre", W::string("tekken")}});
  EXPECT_HAS(bad["error"].get<std::string>(), "t.gguf: tokenizer.ggml.pre 'tekken' is not supported");

  // The document loads and encodes: "ab" merges, "<s>" is special.
  const std::string bytes = gguf_file_bytes({{"tokenizer.ggml.model", W::string("gpt2")},
                                             {"tokenizer.ggml.pre", W::string("llama-bpe")},
                                             {"tokenizer.ggml.tokens", W::string_array({"a", "b", "ab", "<s>"})},
                                             {"tokenizer.ggml.token_type", W::i32_array({1, 1, 1, 3})},
                                             {"tokenizer.ggml.merges", W::string_array({"a b"})},
                                             {"tokenizer.ggml.bos_token_id", W::u32(3)}},
                                            {});
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "t.gguf");
  ASSERT_TRUE(h.ok());
  auto text = gguf_tokenizer_json(*h);
  ASSERT_TRUE(text.ok()) << text.message();
  auto t = Tokenizer::from_json_text(*text, "t");
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(t->encode("ab<s>a"), (std::vector<int32_t>{2, 3, 0}));
  EXPECT_EQ(t->encode("ab", true), (std::vector<int32_t>{3, 2}));
}

// ---- the llama.cpp files in ../shared ----

std::vector<std::string> peer_files() {
  std::vector<std::string> files;
  if (!fs::exists(kPeerDir)) return files;
  for (const auto& e : fs::directory_iterator(kPeerDir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("peer-llama-", 0) == 0 && e.path().extension() == ".gguf") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

#define SKIP_WITHOUT_PEERS()                                                                       \
  if (peer_files().empty())                                                                        \
  GTEST_SKIP() << "the llama.cpp peer files are absent (" << kPeerDir                              \
               << " needs ../shared beside the repository)"

TEST(GgufPeer, EveryFileParsesWithItsConfig) {
  SKIP_WITHOUT_PEERS();
  EXPECT_EQ(peer_files().size(), 8u);
  for (const std::string& path : peer_files()) {
    SCOPED_TRACE(path);
    auto f = GgufFile::open(path);
    ASSERT_TRUE(f.ok()) << f.message();
    EXPECT_EQ((*f)->header().version, 3u);
    EXPECT_EQ((*f)->tensors().size(), 21u);
    // llama.cpp packs the tensors at aligned offsets: the sizes of every type agree
    // with it exactly when each tensor starts where the previous one ends, padded.
    std::vector<const GgufTensorInfo*> order;
    for (const auto& t : (*f)->tensors()) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    uint64_t next = 0, end = 0;
    for (const GgufTensorInfo* t : order) {
      EXPECT_EQ(t->offset, next) << t->name << " " << ggml_type_name(t->type);
      end = t->offset + t->nbytes;
      next = (end + 31) / 32 * 32;
    }
    EXPECT_GE((*f)->header().data_size, end);
    EXPECT_LE((*f)->header().data_size, next);

    auto c = gguf_model_config(**f);
    ASSERT_TRUE(c.ok()) << c.message();
    EXPECT_EQ(c->family, Family::kLlama);
    EXPECT_EQ(c->num_layers, 2);
    EXPECT_EQ(c->hidden_size, 256);
    EXPECT_EQ(c->num_heads, 4);
    EXPECT_EQ(c->num_kv_heads, 2);
    EXPECT_EQ(c->head_dim, 64);
    EXPECT_EQ(c->intermediate_size, 768);
    EXPECT_EQ(c->norm_eps, 1e-5);
    EXPECT_EQ(c->vocab_size, 8257);
    EXPECT_EQ(c->rope_theta, 10000.0);
    EXPECT_EQ(c->max_position_embeddings, 2048);
    EXPECT_FALSE(c->tie_embeddings);
    EXPECT_FALSE(c->qkv_bias);
    EXPECT_EQ(c->eos_token_id, 8256);
    EXPECT_EQ(c->bos_token_id, -1);
  }
}

TEST(GgufPeer, F16FileOpensAsWeights) {
  SKIP_WITHOUT_PEERS();
  const std::string path = kPeerDir + "/peer-llama-f16.gguf";
  auto w = open_gguf_weights(path);
  ASSERT_TRUE(w.ok()) << w.message();
  const ModelConfig& c = (*w)->config();
  uint64_t bytes = 0;
  for (const ExpectedTensor& e : expected_hf_tensors(c)) {
    auto v = (*w)->tensor(e.name);
    ASSERT_TRUE(v.ok()) << v.message();
    EXPECT_EQ(v->shape, e.shape) << e.name;
    EXPECT_EQ(v->dtype, e.shape.size() == 1 ? DType::kF32 : DType::kF16) << e.name;
    EXPECT_EQ(first_non_finite(*v), -1) << e.name;
    bytes += v->nbytes();
  }
  EXPECT_EQ((*w)->parameter_bytes(), bytes);
  // The un-permuted q rows are the stored rows reordered: row 1 of head 0 (HF) is
  // stored row 2.
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok());
  auto stored = (*f)->view(*(*f)->tensor("blk.0.attn_q.weight"));
  ASSERT_TRUE(stored.ok());
  auto q = (*w)->tensor("model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(std::memcmp(q->bytes() + 1 * 256 * 2, stored->bytes() + 2 * 256 * 2, 256 * 2), 0);
  EXPECT_EQ(std::memcmp(q->bytes() + 32 * 256 * 2, stored->bytes() + 1 * 256 * 2, 256 * 2), 0);
}

TEST(GgufPeer, QuantizedFilesOpenWithTheirTensorsPacked) {
  SKIP_WITHOUT_PEERS();
  for (const std::string& path : peer_files()) {
    if (path.find("f16") != std::string::npos) continue;
    SCOPED_TRACE(path);
    auto w = open_gguf_weights(path);
    ASSERT_TRUE(w.ok()) << w.message();
    auto norm = (*w)->tensor("model.norm.weight");
    ASSERT_TRUE(norm.ok());
    EXPECT_FALSE(norm->packed.has_value());
    auto q = (*w)->tensor("model.layers.0.mlp.gate_proj.weight");
    ASSERT_TRUE(q.ok()) << q.message();
    ASSERT_TRUE(q->packed.has_value());
    EXPECT_EQ(q->shape, (std::vector<int64_t>{768, 256}));
  }
}

TEST(GgufPeer, EmbeddedTokenizerMatchesTheHfOne) {
  SKIP_WITHOUT_PEERS();
  auto w = open_gguf_weights(kPeerDir + "/peer-llama-f16.gguf");
  ASSERT_TRUE(w.ok()) << w.message();
  const Tokenizer* t = (*w)->tokenizer();
  ASSERT_NE(t, nullptr);
  auto hf = Tokenizer::from_file(kPeerDir + "/tokenizer.json");
  ASSERT_TRUE(hf.ok()) << hf.message();
  EXPECT_EQ(t->vocab_size(), 8257);
  EXPECT_EQ(t->vocab_size(), hf->vocab_size());
  const std::vector<std::string> texts = {
      "Hello, world!",
      "The quick brown fox jumps over the lazy dog. It's 2025; we'll see what they've done.",
      "  leading and   multiple   spaces\n\nnew lines\r\n\ttabs  ",
      "numbers 1234567890 and 3.14159 and 1,000,000",
      "def f(x):\n    return x ** 2  # comment\n",
      "Ünïcödé: café, naïve, 東京, Привет, 🙂🚀",
      "I'M SHOUTING, YOU'RE NOT, THEY'LL SEE",
      "<|endoftext|>after the special token<|endoftext|>",
      "",
      "a",
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    const std::vector<int32_t> ids = t->encode(text);
    EXPECT_EQ(ids, hf->encode(text));
    EXPECT_EQ(t->decode(ids), text);
  }
}

// Real Hugging Face tokenizers written into a GGUF the way llama.cpp's converter
// does (tokens by id, added tokens as control / user-defined types, merges) come
// back with the same encoding.
TEST(GgufPeer, SynthesizedTokenizersMatchRealOnes) {
  const std::string dir = std::string(GB_SOURCE_DIR) + "/../shared/peers/tokenizers";
  if (!fs::exists(dir + "/qwen3/tokenizer.json"))
    GTEST_SKIP() << "the peer tokenizer files are absent (" << dir << " needs ../shared beside the repository)";
  for (auto [name, pre] : {std::pair{"qwen3", "qwen2"}, std::pair{"llama3", "llama-bpe"}}) {
    SCOPED_TRACE(name);
    const std::string path = dir + "/" + name + "/tokenizer.json";
    std::ifstream in(path);
    const json j = json::parse(in);
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    auto put = [&](size_t id, const std::string& tok, int32_t type) {
      if (tokens.size() <= id) {
        tokens.resize(id + 1);
        types.resize(id + 1, 1);
      }
      tokens[id] = tok;
      types[id] = type;
    };
    for (const auto& [tok, id] : j["model"]["vocab"].items()) put(id.get<size_t>(), tok, 1);
    for (const json& a : j["added_tokens"]) put(a["id"].get<size_t>(), a["content"], a["special"].get<bool>() ? 3 : 4);
    std::vector<std::string> merges;
    for (const json& m : j["model"]["merges"])
      merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
    const std::string bytes = gguf_file_bytes({{"tokenizer.ggml.model", W::string("gpt2")},
                                               {"tokenizer.ggml.pre", W::string(pre)},
                                               {"tokenizer.ggml.tokens", W::string_array(tokens)},
                                               {"tokenizer.ggml.token_type", W::i32_array(types)},
                                               {"tokenizer.ggml.merges", W::string_array(merges)},
                                               {"tokenizer.ggml.bos_token_id", W::u32(0)},
                                               {"tokenizer.ggml.add_bos_token", W::boolean(false)}},
                                              {});
    auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "t.gguf");
    ASSERT_TRUE(h.ok()) << h.message();
    auto text = gguf_tokenizer_json(*h);
    ASSERT_TRUE(text.ok()) << text.message();
    auto ours = Tokenizer::from_json_text(*text, "t.gguf");
    ASSERT_TRUE(ours.ok()) << ours.message();
    auto ref = Tokenizer::from_file(path);
    ASSERT_TRUE(ref.ok()) << ref.message();
    EXPECT_EQ(ours->vocab_size(), ref->vocab_size());
    for (const std::string& t : {std::string("Hello, world! It's 2025 and 1234567 apples cost $3.50."),
                                 std::string("  spaces\n\n\tand   newlines \r\n end "),
                                 std::string("<|im_start|>user\nhi<|im_end|><|begin_of_text|><think>x</think>"),
                                 std::string("def f(x):\n    return {'a': x ** 2}  # café 東京 🙂"),
                                 std::string("DON'T SHOUT; we've they'll I'd")}) {
      SCOPED_TRACE(t);
      EXPECT_EQ(ours->encode(t), ref->encode(t));
    }
  }
}

}  // namespace
}  // namespace gb::engine

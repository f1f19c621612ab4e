// The model presets table: real architectures by name (engine/spec/model_config.h).
// Shared by the roofline theory and the synthetic models. Qwen1.5 presets are untied, as their safetensors
// files are and as reference 003 counts them (total = activated + embedding).
#include <filesystem>
#include <fstream>

#include "engine/spec/model_config.h"

namespace gb::engine {
namespace {

ModelConfig qwen15(std::string name, int64_t vocab, int64_t hidden, int64_t layers, int64_t inter,
                   int64_t heads, int64_t kv_heads) {
  ModelConfig c;
  c.name = std::move(name);
  c.family = Family::kQwen2;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.num_layers = layers;
  c.intermediate_size = inter;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = hidden / heads;
  c.max_position_embeddings = 32768;
  c.qkv_bias = true;
  c.rope_theta = 1000000.0;
  c.norm_eps = 1e-6;
  return c;
}

std::vector<ModelConfig> make_presets() {
  std::vector<ModelConfig> v;
  v.push_back(qwen15("qwen1.5-0.5b", 151936, 1024, 24, 2816, 16, 16));
  v.push_back(qwen15("qwen1.5-1.8b", 151936, 2048, 24, 5504, 16, 16));
  v.push_back(qwen15("qwen1.5-4b", 151936, 2560, 40, 6912, 20, 20));
  v.push_back(qwen15("qwen1.5-7b", 151936, 4096, 32, 11008, 32, 32));
  v.push_back(qwen15("qwen1.5-14b", 152064, 5120, 40, 13696, 40, 40));
  v.push_back(qwen15("qwen1.5-32b", 152064, 5120, 64, 27392, 40, 8));
  v.push_back(qwen15("qwen1.5-32b-nogqa", 152064, 5120, 64, 27392, 40, 40));
  v.push_back(qwen15("qwen1.5-72b", 152064, 8192, 80, 24576, 64, 64));
  v.push_back(qwen15("qwen1.5-110b", 152064, 8192, 80, 49152, 64, 8));
  v.push_back(qwen15("qwen1.5-110b-nogqa", 152064, 8192, 80, 49152, 64, 64));

  ModelConfig q25 = qwen15("qwen2.5-1.5b", 151936, 1536, 28, 8960, 12, 2);
  q25.tie_embeddings = true;
  q25.max_position_embeddings = 131072;
  v.push_back(q25);

  ModelConfig q3 = qwen15("qwen3-1.7b", 151936, 2048, 28, 6144, 16, 8);
  q3.family = Family::kQwen3;
  q3.head_dim = 128;
  q3.qkv_bias = false;
  q3.qk_norm = true;
  q3.tie_embeddings = true;
  q3.max_position_embeddings = 40960;
  v.push_back(q3);

  ModelConfig l3;
  l3.name = "llama-3-8b";
  l3.family = Family::kLlama;
  l3.vocab_size = 128256;
  l3.hidden_size = 4096;
  l3.num_layers = 32;
  l3.intermediate_size = 14336;
  l3.num_heads = 32;
  l3.num_kv_heads = 8;
  l3.head_dim = 128;
  l3.max_position_embeddings = 8192;
  l3.rope_theta = 500000.0;
  l3.norm_eps = 1e-5;
  v.push_back(l3);

  ModelConfig il = l3;
  il.name = "internlm-7b";
  il.vocab_size = 103168;
  il.intermediate_size = 11008;
  il.num_kv_heads = 32;
  il.max_position_embeddings = 2048;
  il.rope_theta = 10000.0;
  il.norm_eps = 1e-6;
  il.qkv_bias = true;
  il.o_bias = true;
  v.push_back(il);

  ModelConfig py;
  py.name = "pythia-2.8b";
  py.family = Family::kGptNeoX;
  py.vocab_size = 50304;
  py.hidden_size = 2560;
  py.num_layers = 32;
  py.intermediate_size = 10240;
  py.num_heads = 32;
  py.num_kv_heads = 32;
  py.head_dim = 80;
  py.max_position_embeddings = 2048;
  py.gated_mlp = false;
  py.qkv_bias = py.o_bias = py.mlp_bias = true;
  py.parallel_residual = true;
  py.layer_norm = true;
  py.rotary_pct = 0.25;
  py.norm_eps = 1e-5;
  py.activation = ModelConfig::Activation::kGelu;
  py.eos_token_id = 0;
  v.push_back(py);

  ModelConfig g2;
  g2.name = "gpt2";
  g2.family = Family::kGpt2;
  g2.vocab_size = 50257;
  g2.hidden_size = 768;
  g2.num_layers = 12;
  g2.intermediate_size = 3072;
  g2.num_heads = 12;
  g2.num_kv_heads = 12;
  g2.head_dim = 64;
  g2.max_position_embeddings = 1024;
  g2.gated_mlp = false;
  g2.qkv_bias = g2.o_bias = g2.mlp_bias = true;
  g2.tie_embeddings = true;
  g2.learned_positions = true;
  g2.layer_norm = true;
  g2.norm_eps = 1e-5;
  g2.activation = ModelConfig::Activation::kGeluTanh;
  g2.eos_token_id = 50256;
  v.push_back(g2);
  return v;
}

}  // namespace

std::string_view family_name(Family f) {
  switch (f) {
    case Family::kLlama: return "llama";
    case Family::kQwen2: return "qwen2";
    case Family::kQwen3: return "qwen3";
    case Family::kGptNeoX: return "gpt_neox";
    case Family::kGpt2: return "gpt2";
  }
  return "?";
}

const std::vector<ModelConfig>& model_presets() {
  static const std::vector<ModelConfig> presets = make_presets();
  return presets;
}

const ModelConfig* find_model_preset(std::string_view name) {
  for (const auto& p : model_presets())
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace gb::engine

// The parameter tensors of a config (engine/spec/model_tensors.h).
#include "engine/spec/model_tensors.h"

#include "engine/spec/dtype.h"

namespace gb::engine {

HfEmbeddingNames hf_embedding_names(Family f, std::string_view gpt2_prefix) {
  switch (f) {
    case Family::kGptNeoX: return {"gpt_neox.embed_in.weight", "embed_out.weight"};
    case Family::kGpt2: return {std::string(gpt2_prefix) + "wte.weight", "lm_head.weight"};
    default: return {"model.embed_tokens.weight", "lm_head.weight"};
  }
}

std::vector<ExpectedTensor> expected_hf_tensors(const ModelConfig& c, std::string_view gpt2_prefix) {
  const int64_t H = c.hidden_size, V = c.vocab_size, I = c.intermediate_size;
  const int64_t hd = c.head_dim > 0 ? c.head_dim : (c.num_heads > 0 ? H / c.num_heads : 0);
  const int64_t q = c.num_heads * hd, kv = c.num_kv_heads * hd;
  std::vector<ExpectedTensor> t;
  auto add = [&](std::string name, std::vector<int64_t> shape) { t.push_back({std::move(name), std::move(shape)}); };
  const HfEmbeddingNames names = hf_embedding_names(c.family, gpt2_prefix);

  switch (c.family) {
    case Family::kLlama:
    case Family::kQwen2:
    case Family::kQwen3: {
      add(names.embed, {V, H});
      for (int64_t l = 0; l < c.num_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        add(p + "input_layernorm.weight", {H});
        add(p + "self_attn.q_proj.weight", {q, H});
        if (c.qkv_bias) add(p + "self_attn.q_proj.bias", {q});
        add(p + "self_attn.k_proj.weight", {kv, H});
        if (c.qkv_bias) add(p + "self_attn.k_proj.bias", {kv});
        add(p + "self_attn.v_proj.weight", {kv, H});
        if (c.qkv_bias) add(p + "self_attn.v_proj.bias", {kv});
        add(p + "self_attn.o_proj.weight", {H, q});
        if (c.o_bias) add(p + "self_attn.o_proj.bias", {H});
        if (c.qk_norm) {
          add(p + "self_attn.q_norm.weight", {hd});
          add(p + "self_attn.k_norm.weight", {hd});
        }
        add(p + "post_attention_layernorm.weight", {H});
        add(p + "mlp.gate_proj.weight", {I, H});
        if (c.mlp_bias) add(p + "mlp.gate_proj.bias", {I});
        add(p + "mlp.up_proj.weight", {I, H});
        if (c.mlp_bias) add(p + "mlp.up_proj.bias", {I});
        add(p + "mlp.down_proj.weight", {H, I});
        if (c.mlp_bias) add(p + "mlp.down_proj.bias", {H});
      }
      add("model.norm.weight", {H});
      break;
    }
    case Family::kGptNeoX: {
      add(names.embed, {V, H});
      for (int64_t l = 0; l < c.num_layers; ++l) {
        const std::string p = "gpt_neox.layers." + std::to_string(l) + ".";
        add(p + "input_layernorm.weight", {H});
        add(p + "input_layernorm.bias", {H});
        add(p + "post_attention_layernorm.weight", {H});
        add(p + "post_attention_layernorm.bias", {H});
        add(p + "attention.query_key_value.weight", {3 * q, H});
        if (c.qkv_bias) add(p + "attention.query_key_value.bias", {3 * q});
        add(p + "attention.dense.weight", {H, q});
        if (c.o_bias) add(p + "attention.dense.bias", {H});
        add(p + "mlp.dense_h_to_4h.weight", {I, H});
        if (c.mlp_bias) add(p + "mlp.dense_h_to_4h.bias", {I});
        add(p + "mlp.dense_4h_to_h.weight", {H, I});
        if (c.mlp_bias) add(p + "mlp.dense_4h_to_h.bias", {H});
      }
      add("gpt_neox.final_layer_norm.weight", {H});
      add("gpt_neox.final_layer_norm.bias", {H});
      break;
    }
    case Family::kGpt2: {
      const std::string pre(gpt2_prefix);
      add(names.embed, {V, H});
      add(pre + "wpe.weight", {c.max_position_embeddings, H});
      for (int64_t l = 0; l < c.num_layers; ++l) {
        const std::string p = pre + "h." + std::to_string(l) + ".";
        add(p + "ln_1.weight", {H});
        add(p + "ln_1.bias", {H});
        add(p + "attn.c_attn.weight", {H, q + 2 * kv});  // Conv1D: [in, out]
        add(p + "attn.c_attn.bias", {q + 2 * kv});
        add(p + "attn.c_proj.weight", {q, H});
        add(p + "attn.c_proj.bias", {H});
        add(p + "ln_2.weight", {H});
        add(p + "ln_2.bias", {H});
        add(p + "mlp.c_fc.weight", {H, I});
        add(p + "mlp.c_fc.bias", {I});
        add(p + "mlp.c_proj.weight", {I, H});
        add(p + "mlp.c_proj.bias", {H});
      }
      add(pre + "ln_f.weight", {H});
      add(pre + "ln_f.bias", {H});
      break;
    }
  }
  if (!c.tie_embeddings) add(names.head, {V, H});
  return t;
}

int64_t parameter_count(const ModelConfig& c) {
  int64_t n = 0;
  for (const ExpectedTensor& t : expected_hf_tensors(c)) n += shape_numel(t.shape);
  return n;
}

}  // namespace gb::engine

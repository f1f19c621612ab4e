// Tiny model configs for the model's tests (model_test, recorded_steps_test), to be
// given synthetic weights.
#pragma once

#include "engine/spec/model_config.h"

namespace gb::engine::test_models {

// Tiny configs of every family, with the switches that make each one different.
inline ModelConfig tiny(Family f) {
  ModelConfig c;
  c.name = "tiny";
  c.family = f;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.intermediate_size = 48;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 64;
  c.norm_eps = 1e-5;
  switch (f) {
    case Family::kLlama:
      c.rope_scaling = ModelConfig::RopeScaling::kLlama3;
      c.rope_factor = 4;
      c.rope_original_max_positions = 16;
      c.rope_theta = 500000;
      break;
    case Family::kQwen2:
      c.qkv_bias = true;
      c.tie_embeddings = true;
      break;
    case Family::kQwen3:
      c.qk_norm = true;
      c.head_dim = 16;  // not hidden / heads
      c.num_kv_heads = 1;
      break;
    case Family::kGptNeoX:
      c.num_kv_heads = 4;
      c.gated_mlp = false;
      c.qkv_bias = c.o_bias = c.mlp_bias = true;
      c.layer_norm = true;
      c.parallel_residual = true;
      c.rotary_pct = 0.25;
      c.activation = ModelConfig::Activation::kGelu;
      break;
    case Family::kGpt2:
      c.num_kv_heads = 4;
      c.gated_mlp = false;
      c.qkv_bias = c.o_bias = c.mlp_bias = true;
      c.layer_norm = true;
      c.learned_positions = true;
      c.tie_embeddings = true;
      c.activation = ModelConfig::Activation::kGeluTanh;
      break;
  }
  return c;
}

}  // namespace gb::engine::test_models

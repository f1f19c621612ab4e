// Shared by the engine's model tests (tests/engine/model/, tests/engine/kv/): tiny
// model configs to be given synthetic weights, seeded token ids and the relative
// error of two logit vectors.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

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

// n token ids below `vocab`, from std::mt19937(seed).
inline std::vector<int32_t> tokens(int n, int vocab, uint32_t seed = 7) {
  std::mt19937 g(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(g() % static_cast<uint32_t>(vocab));
  return t;
}

// max |a - b| / max |b|.
inline double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num = std::max(num, std::abs(double{a[i]} - b[i]));
    den = std::max(den, std::abs(double{b[i]}));
  }
  return den > 0 ? num / den : num;
}

}  // namespace gb::engine::test_models

// ModelConfig: the architecture of a decoder-only transformer, as the engine and
// the roofline theory see it. One struct for every family; the presets table
// (engine/spec/model_presets.cc) is shared by the theory and the synthetic models.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gb::engine {

enum class Family { kLlama, kQwen2, kQwen3, kGptNeoX, kGpt2 };

std::string_view family_name(Family f);

struct ModelConfig {
  std::string name;
  Family family = Family::kLlama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t intermediate_size = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_heads unless the config says otherwise
  int64_t max_position_embeddings = 0;
  bool gated_mlp = true;        // gate/up/down (SiLU) vs fc_in/fc_out (GELU)
  bool qkv_bias = false;        // q/k/v projections have biases
  bool o_bias = false;          // attention output projection has a bias
  bool mlp_bias = false;        // MLP projections have biases
  bool tie_embeddings = false;  // lm_head shares the embedding matrix
  bool qk_norm = false;         // Qwen3: RMSNorm on q and k per head
  bool parallel_residual = false;  // GPT-NeoX
  bool learned_positions = false;  // GPT-2: wpe table, no rope
  bool layer_norm = false;         // LayerNorm (with bias) instead of RMSNorm
  double rotary_pct = 1.0;         // GPT-NeoX partial rotary
  // The MLP's activation: SiLU (gated families), exact GELU (GPT-NeoX "gelu"),
  // or the tanh approximation (GPT-2 "gelu_new").
  enum class Activation { kSilu, kGelu, kGeluTanh };
  Activation activation = Activation::kSilu;
  double rope_theta = 10000.0;
  double norm_eps = 1e-6;
  // Rope scaling (HF rope_scaling): none, "linear" (positions divided by
  // rope_factor) or "llama3" (Llama 3.1's frequency-dependent scaling).
  enum class RopeScaling { kNone, kLinear, kLlama3 };
  RopeScaling rope_scaling = RopeScaling::kNone;
  double rope_factor = 1.0;
  double rope_low_freq_factor = 1.0;          // llama3
  double rope_high_freq_factor = 4.0;         // llama3
  int64_t rope_original_max_positions = 8192; // llama3
  // Special token ids from the config (-1 when not given).
  int64_t bos_token_id = -1;
  int64_t eos_token_id = -1;
};

// Every preset: the Qwen1.5 family (with the hypothetical no-GQA 32B and 110B of
// reference 003), qwen2.5-1.5b, qwen3-1.7b, llama-3-8b, pythia-2.8b, internlm-7b, gpt2.
const std::vector<ModelConfig>& model_presets();
const ModelConfig* find_model_preset(std::string_view name);

// Reads a Hugging Face config.json (already parsed). `where` names the file in errors.
Result<ModelConfig> model_config_from_hf(const nlohmann::json& config, const std::string& where);

// Resolves a model reference as grids and flags write it: a preset name
// ("qwen1.5-7b"), "synthetic:PRESET[@SEED]", "hf:DIR" (reads DIR/config.json) or
// "gguf:FILE" (reads the file's metadata).
Result<ModelConfig> resolve_model(const std::string& ref);

// A model reference taken apart, without reading any file. The resolved config's
// name is the reference as written.
struct ModelRef {
  enum class Kind { kPreset, kSynthetic, kHf, kGguf };
  Kind kind = Kind::kPreset;
  std::string preset;  // kPreset, kSynthetic: a name in model_presets()
  uint64_t seed = 0;   // kSynthetic: the @SEED, 0 when omitted
  std::string hf_dir;  // kHf
  std::string gguf_file;  // kGguf
};
Result<ModelRef> parse_model_ref(const std::string& ref);

}  // namespace gb::engine

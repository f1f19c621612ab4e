// Model references (presets, synthetic:, hf:), Hugging Face config.json reading and
// its errors, and device references.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "engine/spec/device_spec.h"
#include "engine/spec/model_config.h"
#include "tests/engine/temp_dir.h"

namespace gb::engine {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed at the end of the test.
using gb::test_support::TempDir;

const char* kQwen15Config = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "model_type": "qwen2",
  "vocab_size": 151936,
  "hidden_size": 1024,
  "num_hidden_layers": 24,
  "intermediate_size": 2816,
  "num_attention_heads": 16,
  "num_key_value_heads": 16,
  "max_position_embeddings": 32768,
  "rope_theta": 1000000.0,
  "rms_norm_eps": 1e-06,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16"
})";

TEST(HfConfig, Qwen2MatchesPreset) {
  Result<ModelConfig> m = model_config_from_hf(json::parse(kQwen15Config), "config.json");
  ASSERT_TRUE(m.ok()) << m.message();
  const ModelConfig& p = *find_model_preset("qwen1.5-0.5b");
  EXPECT_EQ(m->family, Family::kQwen2);
  EXPECT_EQ(m->vocab_size, p.vocab_size);
  EXPECT_EQ(m->hidden_size, p.hidden_size);
  EXPECT_EQ(m->num_layers, p.num_layers);
  EXPECT_EQ(m->intermediate_size, p.intermediate_size);
  EXPECT_EQ(m->num_heads, p.num_heads);
  EXPECT_EQ(m->num_kv_heads, p.num_kv_heads);
  EXPECT_EQ(m->head_dim, 64);
  EXPECT_EQ(m->max_position_embeddings, 32768);
  EXPECT_TRUE(m->qkv_bias);
  EXPECT_FALSE(m->o_bias);
  EXPECT_TRUE(m->gated_mlp);
  EXPECT_FALSE(m->tie_embeddings);
  EXPECT_DOUBLE_EQ(m->rope_theta, 1e6);
  EXPECT_DOUBLE_EQ(m->norm_eps, 1e-6);
}

TEST(HfConfig, Families) {
  Result<ModelConfig> q3 = model_config_from_hf(
      json{{"model_type", "qwen3"}, {"vocab_size", 151936}, {"hidden_size", 2048}, {"num_hidden_layers", 28},
           {"intermediate_size", 6144}, {"num_attention_heads", 16}, {"num_key_value_heads", 8},
           {"head_dim", 128}, {"tie_word_embeddings", true}, {"attention_bias", false}},
      "q3");
  ASSERT_TRUE(q3.ok()) << q3.message();
  EXPECT_EQ(q3->family, Family::kQwen3);
  EXPECT_EQ(q3->head_dim, 128);
  EXPECT_TRUE(q3->qk_norm);
  EXPECT_FALSE(q3->qkv_bias);
  EXPECT_TRUE(q3->tie_embeddings);

  Result<ModelConfig> neox = model_config_from_hf(
      json{{"model_type", "gpt_neox"}, {"vocab_size", 50304}, {"hidden_size", 2560}, {"num_hidden_layers", 32},
           {"intermediate_size", 10240}, {"num_attention_heads", 32}, {"rotary_pct", 0.25},
           {"rotary_emb_base", 10000}, {"use_parallel_residual", true}, {"layer_norm_eps", 1e-5},
           {"max_position_embeddings", 2048}, {"tie_word_embeddings", false}},
      "neox");
  ASSERT_TRUE(neox.ok()) << neox.message();
  EXPECT_EQ(neox->family, Family::kGptNeoX);
  EXPECT_FALSE(neox->gated_mlp);
  EXPECT_TRUE(neox->qkv_bias && neox->o_bias && neox->mlp_bias);
  EXPECT_TRUE(neox->parallel_residual);
  EXPECT_TRUE(neox->layer_norm);
  EXPECT_DOUBLE_EQ(neox->rotary_pct, 0.25);
  EXPECT_EQ(neox->head_dim, 80);
  EXPECT_EQ(neox->num_kv_heads, 32);

  Result<ModelConfig> gpt2 = model_config_from_hf(
      json{{"model_type", "gpt2"}, {"vocab_size", 50257}, {"n_embd", 768}, {"n_layer", 12}, {"n_head", 12},
           {"n_inner", nullptr}, {"n_positions", 1024}, {"layer_norm_epsilon", 1e-5}},
      "gpt2");
  ASSERT_TRUE(gpt2.ok()) << gpt2.message();
  EXPECT_EQ(gpt2->family, Family::kGpt2);
  EXPECT_EQ(gpt2->intermediate_size, 4 * 768);
  EXPECT_EQ(gpt2->max_position_embeddings, 1024);
  EXPECT_TRUE(gpt2->learned_positions);
  EXPECT_TRUE(gpt2->tie_embeddings);
  EXPECT_TRUE(gpt2->layer_norm);
  EXPECT_EQ(gpt2->head_dim, 64);
  EXPECT_FALSE(model_config_from_hf(json{{"model_type", "gpt2"}, {"vocab_size", 10}, {"n_embd", 10}, {"n_layer", 1},
                                         {"n_head", 3}},
                                    "odd")
                   .ok());

  Result<ModelConfig> internlm = model_config_from_hf(
      json{{"model_type", "internlm"}, {"vocab_size", 103168}, {"hidden_size", 4096}, {"num_hidden_layers", 32},
           {"intermediate_size", 11008}, {"num_attention_heads", 32}, {"bias", true}},
      "internlm");
  ASSERT_TRUE(internlm.ok()) << internlm.message();
  EXPECT_EQ(internlm->family, Family::kLlama);
  EXPECT_TRUE(internlm->qkv_bias && internlm->o_bias);

  Result<ModelConfig> mistral = model_config_from_hf(
      json{{"model_type", "mistral"}, {"vocab_size", 32000}, {"hidden_size", 4096}, {"num_hidden_layers", 32},
           {"intermediate_size", 14336}, {"num_attention_heads", 32}, {"num_key_value_heads", 8},
           {"sliding_window", 4096}},
      "mistral");
  ASSERT_TRUE(mistral.ok()) << mistral.message();
  EXPECT_EQ(mistral->family, Family::kLlama);
  EXPECT_EQ(mistral->num_kv_heads, 8);
  EXPECT_FALSE(mistral->qkv_bias);
}

TEST(HfConfig, ErrorsNameFieldsAndFile) {
  // Several problems at once: all are named, with `where`.
  json c = json::parse(kQwen15Config);
  c.erase("hidden_size");
  c["num_hidden_layers"] = "24";
  c["tie_word_embeddings"] = 1;
  Result<ModelConfig> m = model_config_from_hf(c, "/models/x/config.json");
  ASSERT_FALSE(m.ok());
  const std::string& e = m.message();
  EXPECT_EQ(e.rfind("/models/x/config.json: ", 0), 0u) << e;
  EXPECT_NE(e.find("missing required field hidden_size"), std::string::npos) << e;
  EXPECT_NE(e.find("num_hidden_layers must be an integer, got a string"), std::string::npos) << e;
  EXPECT_NE(e.find("tie_word_embeddings must be a boolean"), std::string::npos) << e;

  Result<ModelConfig> no_type = model_config_from_hf(json{{"vocab_size", 10}}, "w");
  ASSERT_FALSE(no_type.ok());
  EXPECT_EQ(no_type.message(), "w: missing required field model_type");

  Result<ModelConfig> phi = model_config_from_hf(json{{"model_type", "phi"}}, "w");
  ASSERT_FALSE(phi.ok());
  EXPECT_NE(phi.message().find("unsupported model_type 'phi'"), std::string::npos) << phi.message();

  c = json::parse(kQwen15Config);
  c["num_attention_heads"] = 0;
  EXPECT_NE(model_config_from_hf(c, "w").message().find("num_attention_heads must be a positive integer"),
            std::string::npos);
  c = json::parse(kQwen15Config);
  c["num_key_value_heads"] = 3;
  EXPECT_NE(model_config_from_hf(c, "w").message().find("not a multiple of num_key_value_heads"),
            std::string::npos);
  c = json::parse(kQwen15Config);
  c["hidden_size"] = 1000;
  EXPECT_NE(model_config_from_hf(c, "w").message().find("head_dim is not given"), std::string::npos);
  c = json::parse(kQwen15Config);
  c["rope_theta"] = "big";
  EXPECT_NE(model_config_from_hf(c, "w").message().find("rope_theta must be a number"), std::string::npos);
  c = json::parse(kQwen15Config);
  c["hidden_size"] = 1024.0;  // an integral float is an integer
  EXPECT_TRUE(model_config_from_hf(c, "w").ok());
  c["hidden_size"] = 1024.5;
  EXPECT_FALSE(model_config_from_hf(c, "w").ok());
  EXPECT_FALSE(model_config_from_hf(json::array(), "w").ok());
  // gpt2 names its fields differently.
  Result<ModelConfig> g = model_config_from_hf(json{{"model_type", "gpt2"}, {"vocab_size", 50257}}, "g");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.message().find("missing required field n_embd"), std::string::npos) << g.message();
  EXPECT_NE(g.message().find("missing required field n_layer"), std::string::npos) << g.message();
  EXPECT_NE(g.message().find("missing required field n_head"), std::string::npos) << g.message();
}

TEST(ResolveModel, PresetsAndSynthetic) {
  Result<ModelConfig> p = resolve_model("qwen1.5-7b");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "qwen1.5-7b");
  EXPECT_EQ(p->hidden_size, 4096);

  Result<ModelConfig> s = resolve_model("synthetic:qwen1.5-0.5b@42");
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->name, "synthetic:qwen1.5-0.5b@42");
  EXPECT_EQ(s->hidden_size, 1024);
  Result<ModelRef> r = parse_model_ref("synthetic:qwen1.5-0.5b@42");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, ModelRef::Kind::kSynthetic);
  EXPECT_EQ(r->preset, "qwen1.5-0.5b");
  EXPECT_EQ(r->seed, 42u);
  EXPECT_EQ(parse_model_ref("synthetic:gpt2")->seed, 0u);

  for (const char* bad : {"qwen1.5-9b", "", "synthetic:", "synthetic:nope@1"}) {
    Result<ModelConfig> m = resolve_model(bad);
    ASSERT_FALSE(m.ok()) << bad;
    EXPECT_NE(m.message().find("unknown model"), std::string::npos) << m.message();
    EXPECT_NE(m.message().find("qwen1.5-0.5b"), std::string::npos) << m.message();
  }
  for (const char* bad : {"synthetic:gpt2@", "synthetic:gpt2@-1", "synthetic:gpt2@x", "synthetic:gpt2@1.5"}) {
    Result<ModelConfig> m = resolve_model(bad);
    ASSERT_FALSE(m.ok()) << bad;
    EXPECT_NE(m.message().find("unsigned integer"), std::string::npos) << m.message();
  }
}

TEST(ResolveModel, HfDirectory) {
  TempDir dir;
  dir.write("config.json", kQwen15Config);
  const std::string ref = "hf:" + dir.path().string();
  Result<ModelConfig> m = resolve_model(ref);
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->name, ref);
  EXPECT_EQ(m->intermediate_size, 2816);

  TempDir empty;
  Result<ModelConfig> missing = resolve_model("hf:" + empty.path().string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find((empty.path() / "config.json").string()), std::string::npos)
      << missing.message();

  TempDir broken;
  broken.write("config.json", "{\"model_type\": \"qwen2\",");
  Result<ModelConfig> bad = resolve_model("hf:" + broken.path().string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find((broken.path() / "config.json").string() + ": line 1 column 24: syntax error"),
            std::string::npos)
      << bad.message();

  // Outside input is parsed with limits (common/json_parse.h): a hidden_size past a
  // double and nesting 100,000 deep are errors naming the JSON path, not crashes.
  TempDir huge;
  huge.write("config.json", R"({"model_type": "llama", "hidden_size": 1e400})");
  Result<ModelConfig> h = resolve_model("hf:" + huge.path().string());
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.message(),
            (huge.path() / "config.json").string() + ": $.hidden_size: number 1e400 is outside the range of a double");
  TempDir deep;
  deep.write("config.json", std::string(100000, '[') + std::string(100000, ']'));
  Result<ModelConfig> d = resolve_model("hf:" + deep.path().string());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.message().find("nested deeper than 64 levels"), std::string::npos) << d.message().substr(0, 300);

  TempDir incomplete;
  incomplete.write("config.json", R"({"model_type": "llama", "vocab_size": 32000})");
  Result<ModelConfig> inc = resolve_model("hf:" + incomplete.path().string());
  ASSERT_FALSE(inc.ok());
  EXPECT_NE(inc.message().find((incomplete.path() / "config.json").string() + ": missing required field"),
            std::string::npos)
      << inc.message();

  EXPECT_FALSE(resolve_model("hf:").ok());
}

TEST(ResolveDevice, PresetsAndObjects) {
  Result<DeviceSpec> d = resolve_device("rtx4090");
  ASSERT_TRUE(d.ok());
  EXPECT_DOUBLE_EQ(d->memory_bytes, 24.0 * (1 << 30));

  Result<DeviceSpec> o = resolve_device(
      json{{"name", "mine"}, {"memory_gib", 16}, {"bandwidth_bytes_per_s", 5e11}, {"tflops", 100}});
  ASSERT_TRUE(o.ok()) << o.message();
  EXPECT_EQ(o->name, "mine");
  EXPECT_DOUBLE_EQ(o->memory_bytes, 16.0 * (1 << 30));
  EXPECT_DOUBLE_EQ(o->bandwidth_bytes_per_s, 5e11);
  EXPECT_DOUBLE_EQ(o->flops_per_s, 100e12);
  EXPECT_EQ(device_to_json(*o)["flops_per_s"], 100e12);

  Result<DeviceSpec> unknown = resolve_device("rtx5090");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("unknown device 'rtx5090'"), std::string::npos);
  EXPECT_NE(unknown.message().find("rtx4090"), std::string::npos);

  Result<DeviceSpec> bad = resolve_device(
      json{{"name", "x"}, {"memory_gib", 16}, {"memory_bytes", 1e9}, {"bandwith_gib_s", 100}, {"tflops", -1}});
  ASSERT_FALSE(bad.ok());
  const std::string& e = bad.message();
  EXPECT_NE(e.find("unknown key 'bandwith_gib_s'"), std::string::npos) << e;
  EXPECT_NE(e.find("give only one of memory"), std::string::npos) << e;
  EXPECT_NE(e.find("missing bandwidth"), std::string::npos) << e;
  EXPECT_NE(e.find("tflops must be a positive number"), std::string::npos) << e;

  Result<DeviceSpec> no_name = resolve_device(json{{"memory_gib", 1}, {"bandwidth_gib_s", 1}, {"tflops", 1}});
  ASSERT_FALSE(no_name.ok());
  EXPECT_NE(no_name.message().find("missing name"), std::string::npos);
  EXPECT_FALSE(resolve_device(json(3)).ok());
}

}  // namespace
}  // namespace gb::engine

namespace gb::engine {
namespace {

TEST(HfConfig, RopeScalingActivationAndSpecialTokens) {
  nlohmann::json c = {{"model_type", "llama"},   {"vocab_size", 128},        {"hidden_size", 64},
                      {"num_hidden_layers", 2},  {"intermediate_size", 128}, {"num_attention_heads", 4},
                      {"bos_token_id", 1},       {"eos_token_id", {7, 9}}};
  c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  Result<ModelConfig> m = model_config_from_hf(c, "cfg.json");
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->rope_scaling, ModelConfig::RopeScaling::kLlama3);
  EXPECT_DOUBLE_EQ(m->rope_factor, 8.0);
  EXPECT_EQ(m->rope_original_max_positions, 8192);
  EXPECT_EQ(m->bos_token_id, 1);
  EXPECT_EQ(m->eos_token_id, 7);  // the first of a list
  EXPECT_EQ(m->activation, ModelConfig::Activation::kSilu);

  c["rope_scaling"] = {{"type", "linear"}, {"factor", 2}};
  m = model_config_from_hf(c, "cfg.json");
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->rope_scaling, ModelConfig::RopeScaling::kLinear);

  c["rope_scaling"] = {{"type", "yarn"}, {"factor", 4}};
  m = model_config_from_hf(c, "cfg.json");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("rope_scaling type 'yarn' is not supported"), std::string::npos) << m.message();
  EXPECT_NE(m.message().find("cfg.json"), std::string::npos) << m.message();

  c["rope_scaling"] = {{"type", "linear"}};
  EXPECT_NE(model_config_from_hf(c, "cfg.json").message().find("factor"), std::string::npos);

  c["rope_scaling"] = nullptr;
  c["hidden_act"] = "relu";
  EXPECT_NE(model_config_from_hf(c, "cfg.json").message().find("hidden_act 'relu' is not supported"),
            std::string::npos);

  // transformers 5's layout: rope_parameters carries the theta and the scaling.
  c.erase("hidden_act");
  c["rope_parameters"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192},
                          {"rope_theta", 500000.0}};
  m = model_config_from_hf(c, "cfg.json");
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_DOUBLE_EQ(m->rope_theta, 500000.0);
  EXPECT_EQ(m->rope_scaling, ModelConfig::RopeScaling::kLlama3);
  c["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
  m = model_config_from_hf(c, "cfg.json");
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_DOUBLE_EQ(m->rope_theta, 1e6);
  EXPECT_EQ(m->rope_scaling, ModelConfig::RopeScaling::kNone);

  nlohmann::json g = {{"model_type", "gpt2"}, {"vocab_size", 256}, {"n_embd", 64}, {"n_layer", 2}, {"n_head", 4}};
  m = model_config_from_hf(g, "g.json");
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->activation, ModelConfig::Activation::kGeluTanh);
}

}  // namespace
}  // namespace gb::engine

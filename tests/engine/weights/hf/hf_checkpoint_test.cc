// hf:DIR checkpoints: tiny models of every family, written with write_safetensors
// in HF layout, load and validate; a removed, added, reshaped or retyped tensor is
// reported by name; sharded indexes; the NaN/infinity check.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <unistd.h>

#include "engine/weights/hf/hf_checkpoint.h"
#include "engine/weights/hf/safetensors.h"
#include "tests/engine/temp_dir.h"

namespace gb::engine {
namespace {
namespace hf_checkpoint_test {

namespace fs = std::filesystem;
using nlohmann::json;

using gb::test_support::TempDir;

// One tensor of a tiny model, owning its bytes.
struct Owned {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Deterministic values: element i of tensor k is ((k * 31 + i) % 17 - 8) / 16.
float value(size_t k, int64_t i) { return static_cast<float>(static_cast<int64_t>((k * 31 + i) % 17) - 8) / 16.0f; }

Owned make_tensor(size_t k, const std::string& name, const std::vector<int64_t>& shape, DType dtype) {
  Owned t{name, dtype, shape, {}};
  const int64_t n = shape_numel(shape);
  t.bytes.resize(static_cast<size_t>(n) * dtype_size(dtype));
  for (int64_t i = 0; i < n; ++i) {
    const float f = value(k, i);
    if (dtype == DType::kF32) {
      std::memcpy(t.bytes.data() + 4 * i, &f, 4);
    } else {
      const uint16_t h = dtype == DType::kF16 ? kernels::f32_to_f16(f) : kernels::f32_to_bf16(f);
      std::memcpy(t.bytes.data() + 2 * i, &h, 2);
    }
  }
  return t;
}

std::vector<SafetensorsWriteEntry> entries(const std::vector<Owned>& ts) {
  std::vector<SafetensorsWriteEntry> e;
  for (const Owned& t : ts) e.push_back({t.name, {t.dtype, t.shape, t.bytes.data()}});
  return e;
}

struct FamilyCase {
  const char* name;
  const char* config;
  size_t tensors_per_layer;
  bool tied;
};

const std::vector<FamilyCase>& families() {
  static const std::vector<FamilyCase> cases = {
      {"llama-gqa",
       R"({"model_type":"llama","vocab_size":32,"hidden_size":16,"num_hidden_layers":2,"intermediate_size":24,
           "num_attention_heads":4,"num_key_value_heads":2})",
       9, false},
      {"mistral-headdim",
       R"({"model_type":"mistral","vocab_size":32,"hidden_size":16,"num_hidden_layers":2,"intermediate_size":24,
           "num_attention_heads":4,"num_key_value_heads":1,"head_dim":8,"tie_word_embeddings":true})",
       9, true},
      {"internlm-bias",
       R"({"model_type":"internlm","vocab_size":32,"hidden_size":16,"num_hidden_layers":2,"intermediate_size":24,
           "num_attention_heads":4})",
       13, false},
      {"qwen2",
       R"({"model_type":"qwen2","vocab_size":32,"hidden_size":16,"num_hidden_layers":2,"intermediate_size":24,
           "num_attention_heads":4,"num_key_value_heads":2,"tie_word_embeddings":true})",
       12, true},
      {"qwen3",
       R"({"model_type":"qwen3","vocab_size":32,"hidden_size":16,"num_hidden_layers":2,"intermediate_size":24,
           "num_attention_heads":4,"num_key_value_heads":2,"head_dim":8,"tie_word_embeddings":true})",
       11, true},
      {"gpt_neox",
       R"({"model_type":"gpt_neox","vocab_size":32,"hidden_size":16,"num_hidden_layers":2,"intermediate_size":64,
           "num_attention_heads":4,"rotary_pct":0.25})",
       12, false},
      {"gpt2",
       R"({"model_type":"gpt2","vocab_size":32,"n_embd":16,"n_layer":2,"n_head":4,"n_positions":8})", 12, true},
  };
  return cases;
}

ModelConfig config_of(const FamilyCase& f) {
  auto c = model_config_from_hf(json::parse(f.config), f.name);
  GB_CHECK(c.ok());
  return *c;
}

// The tensors of a tiny model of `f`, as HF would save them.
std::vector<Owned> model_tensors(const FamilyCase& f, DType dtype = DType::kF32, std::string_view gpt2_prefix = "transformer.") {
  std::vector<Owned> out;
  const auto expected = expected_hf_tensors(config_of(f), gpt2_prefix);
  for (size_t k = 0; k < expected.size(); ++k) out.push_back(make_tensor(k, expected[k].name, expected[k].shape, dtype));
  return out;
}

void write_model(const TempDir& dir, const FamilyCase& f, const std::vector<Owned>& tensors) {
  std::ofstream(dir.file("config.json")) << f.config;
  Status s = write_safetensors(dir.file("model.safetensors"), entries(tensors), {{"format", "pt"}});
  GB_CHECK(s.ok());
}

std::string open_error(const TempDir& dir, HfCheckpointOptions options = {}) {
  auto ck = HfCheckpoint::open(dir.str(), options);
  return ck ? "" : ck.message();
}

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

TEST(HfCheckpoint, TinyModelOfEveryFamilyLoads) {
  for (const FamilyCase& f : families()) {
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
      SCOPED_TRACE(std::string(f.name) + " " + std::string(dtype_name(dtype)));
      TempDir dir;
      const std::vector<Owned> tensors = model_tensors(f, dtype);
      write_model(dir, f, tensors);
      auto ck = HfCheckpoint::open(dir.str(), {.check_finite = true});
      ASSERT_TRUE(ck.ok()) << ck.message();
      const ModelConfig& c = (*ck)->config();
      EXPECT_EQ(c.name, "hf:" + dir.str());
      // embedding + per layer + final norm(s) (+ wpe) (+ head)
      const size_t globals = c.family == Family::kGpt2 ? 4 : c.family == Family::kGptNeoX ? 3 : 2;
      EXPECT_EQ((*ck)->parameters().size(), globals + 2 * f.tensors_per_layer + (f.tied ? 0 : 1));
      EXPECT_EQ((*ck)->output_head_tied(), f.tied);
      uint64_t bytes = 0;
      for (const Owned& t : tensors) bytes += t.bytes.size();
      EXPECT_EQ((*ck)->parameter_bytes(), bytes);
      // Every tensor's values come back (through the conversions).
      for (size_t k = 0; k < tensors.size(); ++k) {
        auto v = (*ck)->tensor(tensors[k].name);
        ASSERT_TRUE(v.ok()) << v.message();
        ASSERT_EQ(v->shape, tensors[k].shape);
        const std::vector<float> got = to_f32(*v);
        for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], value(k, static_cast<int64_t>(i))) << tensors[k].name;
      }
      const std::string head = c.family == Family::kGptNeoX ? "embed_out.weight" : "lm_head.weight";
      auto h = (*ck)->tensor(head);
      ASSERT_TRUE(h.ok()) << h.message();
      EXPECT_EQ(h->shape, (std::vector<int64_t>{32, 16}));
      if (f.tied) {
        EXPECT_EQ(h->data, (*ck)->tensor(tensors[0].name)->data);  // the embedding itself
      }
      auto none = (*ck)->tensor("model.nope");
      ASSERT_FALSE(none.ok());
      EXPECT_HAS(none.message(), "'model.nope'");
    }
  }
}

TEST(HfCheckpoint, ExpectedShapesFollowTheConfig) {
  auto find = [](const std::vector<ExpectedTensor>& ts, const std::string& n) {
    for (const auto& t : ts)
      if (t.name == n) return t.shape;
    return std::vector<int64_t>{-1};
  };
  const auto mistral = expected_hf_tensors(config_of(families()[1]));
  EXPECT_EQ(find(mistral, "model.layers.1.self_attn.q_proj.weight"), (std::vector<int64_t>{32, 16}));  // 4 x 8
  EXPECT_EQ(find(mistral, "model.layers.1.self_attn.k_proj.weight"), (std::vector<int64_t>{8, 16}));   // MQA
  EXPECT_EQ(find(mistral, "model.layers.1.self_attn.o_proj.weight"), (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(find(mistral, "model.layers.0.mlp.down_proj.weight"), (std::vector<int64_t>{16, 24}));
  const auto qwen3 = expected_hf_tensors(config_of(families()[4]));
  EXPECT_EQ(find(qwen3, "model.layers.0.self_attn.q_norm.weight"), (std::vector<int64_t>{8}));
  const auto qwen2 = expected_hf_tensors(config_of(families()[3]));
  EXPECT_EQ(find(qwen2, "model.layers.0.self_attn.k_proj.bias"), (std::vector<int64_t>{8}));
  const auto neox = expected_hf_tensors(config_of(families()[5]));
  EXPECT_EQ(find(neox, "gpt_neox.layers.1.attention.query_key_value.weight"), (std::vector<int64_t>{48, 16}));
  EXPECT_EQ(find(neox, "embed_out.weight"), (std::vector<int64_t>{32, 16}));
  const auto gpt2 = expected_hf_tensors(config_of(families()[6]));
  EXPECT_EQ(find(gpt2, "transformer.h.1.attn.c_attn.weight"), (std::vector<int64_t>{16, 48}));  // Conv1D [in, out]
  EXPECT_EQ(find(gpt2, "transformer.h.0.mlp.c_fc.weight"), (std::vector<int64_t>{16, 64}));
  EXPECT_EQ(find(gpt2, "transformer.wpe.weight"), (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(find(gpt2, "lm_head.weight"), (std::vector<int64_t>{-1}));  // tied
}

TEST(HfCheckpoint, RemovedAddedReshapedRetypedTensorsAreNamed) {
  for (const FamilyCase& f : families()) {
    SCOPED_TRACE(f.name);
    const std::vector<Owned> base = model_tensors(f);
    const Owned& victim = base[base.size() / 2];
    const std::string weights_suffix = "model.safetensors: ";
    {  // removed
      TempDir dir;
      std::vector<Owned> t = base;
      t.erase(t.begin() + static_cast<long>(base.size() / 2));
      write_model(dir, f, t);
      const std::string err = open_error(dir);
      EXPECT_HAS(err, weights_suffix);
      EXPECT_HAS(err, "missing tensor '" + victim.name + "'");
    }
    {  // added, and a layer past num_hidden_layers
      TempDir dir;
      std::vector<Owned> t = base;
      t.push_back(make_tensor(0, "extra.weight", {4}, DType::kF32));
      std::string layer2 = base[base.size() / 2].name;
      const size_t pos = layer2.find(".1.");
      ASSERT_NE(pos, std::string::npos) << layer2;
      layer2.replace(pos, 3, ".2.");
      t.push_back(make_tensor(0, layer2, base[base.size() / 2].shape, DType::kF32));
      write_model(dir, f, t);
      const std::string err = open_error(dir);
      EXPECT_HAS(err, "unexpected tensors");
      EXPECT_HAS(err, "'extra.weight'");
      EXPECT_HAS(err, "'" + layer2 + "'");
    }
    {  // reshaped (transposed, same byte count)
      TempDir dir;
      std::vector<Owned> t = base;
      Owned w;  // the first non-square 2-D tensor after the embedding, transposed
      for (Owned& c : t)
        if (c.shape.size() == 2 && c.shape[0] != c.shape[1] && &c != &t[0]) {
          std::swap(c.shape[0], c.shape[1]);
          w = c;
          break;
        }
      write_model(dir, f, t);
      const std::string err = open_error(dir);
      EXPECT_HAS(err, "tensor '" + w.name + "'");
      EXPECT_HAS(err, "has shape " + shape_string(w.shape) + " but the config expects [" +
                          std::to_string(w.shape[1]) + ", " + std::to_string(w.shape[0]) + "]");
    }
    {  // retyped: I32 with the same bytes
      TempDir dir;
      std::vector<Owned> t = base;
      t.back().dtype = DType::kI32;
      write_model(dir, f, t);
      const std::string err = open_error(dir);
      EXPECT_HAS(err, "tensor '" + t.back().name + "'");
      EXPECT_HAS(err, "dtype I32, expected F32, F16 or BF16");
    }
  }
}

TEST(HfCheckpoint, Gpt2WithoutTransformerPrefixAndWithStoredHead) {
  const FamilyCase& f = families()[6];
  {
    TempDir dir;
    write_model(dir, f, model_tensors(f, DType::kF32, ""));  // as the hub's gpt2 stores it
    auto ck = HfCheckpoint::open(dir.str());
    ASSERT_TRUE(ck.ok()) << ck.message();
    EXPECT_TRUE((*ck)->tensor("h.0.attn.c_attn.weight").ok());
    EXPECT_EQ((*ck)->tensor("lm_head.weight")->data, (*ck)->tensor("wte.weight")->data);
  }
  {  // old checkpoints' attention mask buffers are ignored; a tied head may be stored
    TempDir dir;
    std::vector<Owned> t = model_tensors(f);
    t.push_back(make_tensor(0, "transformer.h.0.attn.bias", {1, 1, 8, 8}, DType::kF32));
    t.push_back(make_tensor(0, "transformer.h.0.attn.masked_bias", {}, DType::kF32));
    t.push_back(make_tensor(0, "lm_head.weight", {32, 16}, DType::kF32));
    write_model(dir, f, t);
    auto ck = HfCheckpoint::open(dir.str());
    ASSERT_TRUE(ck.ok()) << ck.message();
    EXPECT_FALSE((*ck)->output_head_tied());
  }
  {  // a stored tied head must have the embedding's shape
    TempDir dir;
    std::vector<Owned> t = model_tensors(f);
    t.push_back(make_tensor(0, "lm_head.weight", {16, 32}, DType::kF32));
    write_model(dir, f, t);
    EXPECT_HAS(open_error(dir), "tensor 'lm_head.weight'");
  }
  {  // mixing the prefixed and unprefixed names
    TempDir dir;
    std::vector<Owned> t = model_tensors(f);
    t.push_back(make_tensor(0, "h.0.ln_1.weight", {16}, DType::kF32));
    write_model(dir, f, t);
    EXPECT_HAS(open_error(dir), "unexpected tensor 'h.0.ln_1.weight'");
  }
}

TEST(HfCheckpoint, RotaryInvFreqBuffersAreIgnored) {
  TempDir dir;
  const FamilyCase& f = families()[0];
  std::vector<Owned> t = model_tensors(f);
  t.push_back(make_tensor(0, "model.layers.0.self_attn.rotary_emb.inv_freq", {2}, DType::kF32));
  write_model(dir, f, t);
  EXPECT_EQ(open_error(dir), "");
}

TEST(HfCheckpoint, ShardedIndex) {
  const FamilyCase& f = families()[2];  // internlm: biases everywhere
  const std::vector<Owned> t = model_tensors(f, DType::kBF16);
  const size_t half = t.size() / 2;
  auto write_sharded = [&](const TempDir& dir, const std::function<void(json&)>& edit_index) {
    std::ofstream(dir.file("config.json")) << f.config;
    const std::vector<Owned> a(t.begin(), t.begin() + static_cast<long>(half)), b(t.begin() + static_cast<long>(half), t.end());
    ASSERT_TRUE(write_safetensors(dir.file("model-00001-of-00002.safetensors"), entries(a)).ok());
    ASSERT_TRUE(write_safetensors(dir.file("model-00002-of-00002.safetensors"), entries(b)).ok());
    json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
    for (size_t i = 0; i < t.size(); ++i)
      index["weight_map"][t[i].name] = i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    edit_index(index);
    std::ofstream(dir.file("model.safetensors.index.json")) << index.dump();
  };
  {
    TempDir dir;
    write_sharded(dir, [](json&) {});
    auto ck = HfCheckpoint::open(dir.str(), {.check_finite = true});
    ASSERT_TRUE(ck.ok()) << ck.message();
    EXPECT_EQ((*ck)->files().size(), 2u);
    EXPECT_EQ((*ck)->file_of(t.front().name), dir.file("model-00001-of-00002.safetensors"));
    EXPECT_EQ((*ck)->file_of(t.back().name), dir.file("model-00002-of-00002.safetensors"));
    EXPECT_EQ(to_f32(*(*ck)->tensor(t.back().name))[3], value(t.size() - 1, 3));
  }
  {  // a tensor mapped to the wrong shard
    TempDir dir;
    write_sharded(dir, [&](json& j) { j["weight_map"][t.front().name] = "model-00002-of-00002.safetensors"; });
    const std::string err = open_error(dir);
    EXPECT_HAS(err, "model.safetensors.index.json: tensor '" + t.front().name + "' is mapped to model-00002");
  }
  {  // a shard holds a tensor the index does not name
    TempDir dir;
    write_sharded(dir, [&](json& j) { j["weight_map"].erase(t.back().name); });
    const std::string err = open_error(dir);
    EXPECT_HAS(err, "model-00002-of-00002.safetensors: tensor '" + t.back().name + "' is not in");
  }
  {  // a missing shard
    TempDir dir;
    write_sharded(dir, [&](json& j) { j["weight_map"][t.back().name] = "model-00003-of-00002.safetensors"; });
    const std::string err = open_error(dir);
    EXPECT_HAS(err, "model-00003-of-00002.safetensors: cannot open");
  }
  {  // a path outside the directory
    TempDir dir;
    write_sharded(dir, [&](json& j) { j["weight_map"][t.back().name] = "../x.safetensors"; });
    EXPECT_HAS(open_error(dir), "must name a file in the model directory");
  }
  {  // a tensor the config does not expect, spread over shards, is still named
    TempDir dir;
    write_sharded(dir, [&](json& j) { j["weight_map"].erase(t[1].name); });
    fs::remove(dir.file("model-00001-of-00002.safetensors"));
    std::vector<Owned> a(t.begin(), t.begin() + static_cast<long>(half));
    a.erase(a.begin() + 1);
    ASSERT_TRUE(write_safetensors(dir.file("model-00001-of-00002.safetensors"), entries(a)).ok());
    const std::string err = open_error(dir);
    EXPECT_HAS(err, "model.safetensors.index.json: missing tensor '" + t[1].name + "'");
  }
  {  // not JSON
    TempDir dir;
    write_sharded(dir, [](json&) {});
    std::ofstream(dir.file("model.safetensors.index.json")) << "{";
    EXPECT_HAS(open_error(dir), "model.safetensors.index.json: line 1 column 2: syntax error");
  }
}

TEST(HfCheckpoint, NonFiniteWeightsWhenTheCheckIsOn) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(std::string(dtype_name(dtype)));
    const FamilyCase& f = families()[4];
    for (float bad : {NAN, -INFINITY}) {
      TempDir dir;
      std::vector<Owned> t = model_tensors(f, dtype);
      Owned& w = t[5];
      const size_t at = 3;
      if (dtype == DType::kF32) {
        std::memcpy(w.bytes.data() + 4 * at, &bad, 4);
      } else {
        const uint16_t h = dtype == DType::kF16 ? kernels::f32_to_f16(bad) : kernels::f32_to_bf16(bad);
        std::memcpy(w.bytes.data() + 2 * at, &h, 2);
      }
      write_model(dir, f, t);
      EXPECT_EQ(open_error(dir), "");  // off by default
      const std::string err = open_error(dir, {.check_finite = true});
      EXPECT_HAS(err, dir.file("model.safetensors") + ": tensor '" + w.name + "' has");
      EXPECT_HAS(err, std::string(std::isnan(bad) ? "a NaN" : "an infinity") + " at element 3");
    }
  }
}

TEST(HfCheckpoint, BadDirectoriesAndFiles) {
  const FamilyCase& f = families()[0];
  {
    TempDir dir;
    EXPECT_HAS(open_error(dir), "config.json");
  }
  {
    TempDir dir;
    std::ofstream(dir.file("config.json")) << f.config;
    EXPECT_HAS(open_error(dir), "no model.safetensors or model.safetensors.index.json");
  }
  {
    TempDir dir;
    std::ofstream(dir.file("config.json")) << R"({"model_type":"llama"})";
    EXPECT_HAS(open_error(dir), "missing required field vocab_size");
  }
  {  // a truncated model.safetensors
    TempDir dir;
    write_model(dir, f, model_tensors(f));
    const auto size = fs::file_size(dir.file("model.safetensors"));
    fs::resize_file(dir.file("model.safetensors"), size - 10);
    const std::string err = open_error(dir);
    EXPECT_HAS(err, dir.file("model.safetensors") + ": tensor '");
    EXPECT_HAS(err, "out of range");
  }
  {  // wrong header length
    TempDir dir;
    write_model(dir, f, model_tensors(f));
    std::fstream io(dir.file("model.safetensors"), std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(5);
    io.put('\x7f');
    io.close();
    EXPECT_HAS(open_error(dir), dir.file("model.safetensors") + ": header length");
  }
}

}  // namespace hf_checkpoint_test
}  // namespace
}  // namespace gb::engine

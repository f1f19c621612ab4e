// GGUF: the real llama.cpp files in ../shared/peers (skipped where absent) parse
// with their configs, open as weights (f16 and quantized), and their embedded
// tokenizer matches the Hugging Face one.
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
#include "tests/engine/weights/gguf/gguf_test_converter.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;
using namespace gguf_test;

const std::string kPeerDir = std::string(GB_SOURCE_DIR) + "/../shared/peers/llama-gguf";

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

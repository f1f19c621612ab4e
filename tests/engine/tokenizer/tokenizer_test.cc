// The tokenizer against the reference implementation (Hugging Face `tokenizers`):
// tests/data/tokenizer/expected_ids.json holds its ids and decoded texts, written
// by tools/gen_tokenizer_expected.py, for the project's own small tokenizer files
// (always tested) and the real ones in ../shared/peers (skipped where absent).
#include "engine/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

namespace gb::engine {
namespace {
namespace tokenizer_test {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kDataDir = std::string(GB_SOURCE_DIR) + "/tests/data/tokenizer";
const std::string kSharedDir = std::string(GB_SOURCE_DIR) + "/../shared";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const json& expected() {
  static const json j = json::parse(read_text(kDataDir + "/expected_ids.json"));
  return j;
}

// "data:X" -> tests/data/tokenizer/X, "shared:X" -> ../shared/X.
std::string resolve(const std::string& ref) {
  if (ref.rfind("data:", 0) == 0) return kDataDir + "/" + ref.substr(5);
  return kSharedDir + "/" + ref.substr(7);
}

std::string show(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

class ReferenceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const json& e = expected()["tokenizers"][GetParam()];
    ref_ = e;
    path_ = resolve(e["file"].get<std::string>());
    if (e["file"].get<std::string>().rfind("shared:", 0) == 0 && !fs::exists(path_))
      GTEST_SKIP() << "the peer tokenizer files are absent (" << path_
                   << " needs ../shared beside the repository)";
    // Loaded once per file: the real vocabularies take a while to parse.
    static std::map<std::string, Tokenizer> loaded;
    auto it = loaded.find(path_);
    if (it == loaded.end()) {
      auto t = Tokenizer::from_file(path_);
      ASSERT_TRUE(t.ok()) << t.message();
      it = loaded.emplace(path_, std::move(*t)).first;
    }
    tok_.emplace(it->second);
  }
  json ref_;
  std::string path_;
  std::optional<Tokenizer> tok_;
};

TEST_P(ReferenceTest, EncodeMatchesIdForId) {
  const json& texts = expected()["texts"];
  int mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::string text = texts[i].get<std::string>();
    auto want = ref_["ids"][i].get<std::vector<int32_t>>();
    auto got = tok_->encode(text);
    EXPECT_EQ(got, want) << "text " << i << " " << json(text).dump() << "\n got  " << show(got)
                         << "\n want " << show(want);
    mismatches += got != want;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_P(ReferenceTest, EncodeWithSpecialTokensMatches) {
  const json& texts = expected()["texts"];
  for (size_t i = 0; i < texts.size(); ++i) {
    auto want = ref_["ids_special"][i].get<std::vector<int32_t>>();
    auto got = tok_->encode(texts[i].get<std::string>(), /*add_special=*/true);
    EXPECT_EQ(got, want) << "text " << i << "\n got  " << show(got) << "\n want " << show(want);
  }
}

TEST_P(ReferenceTest, DecodeMatchesReference) {
  for (size_t i = 0; i < ref_["ids"].size(); ++i) {
    auto ids = ref_["ids"][i].get<std::vector<int32_t>>();
    EXPECT_EQ(tok_->decode(ids), ref_["decoded"][i].get<std::string>()) << "text " << i;
  }
}

// decode(encode(x)) == x wherever the reference round-trips (it does not where the
// normalizer changes the text, e.g. NFC of decomposed accents, or where Mistral's
// decoder puts a space after a special token).
TEST_P(ReferenceTest, RoundTrip) {
  const json& texts = expected()["texts"];
  int round_trips = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::string text = texts[i].get<std::string>();
    if (ref_["decoded"][i].get<std::string>() != text) continue;
    ++round_trips;
    EXPECT_EQ(tok_->decode(tok_->encode(text)), text) << "text " << i;
  }
  EXPECT_GE(round_trips, 10);
}

TEST_P(ReferenceTest, VocabSizeAndPieces) {
  EXPECT_EQ(tok_->vocab_size(), ref_["vocab_size"].get<int32_t>());
  auto ids = tok_->encode("Hello world");
  auto pieces = tok_->pieces(ids);
  ASSERT_EQ(pieces.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(tok_->token_id(pieces[i]), ids[i]) << pieces[i];
}

std::vector<std::string> reference_names() {
  std::vector<std::string> names;
  for (auto it = expected()["tokenizers"].begin(); it != expected()["tokenizers"].end(); ++it)
    names.push_back(it.key());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, ReferenceTest, ::testing::ValuesIn(reference_names()),
                         [](const auto& info) { return info.param; });

TEST(Tokenizer, ExpectedDataCoversEveryKind) {
  for (const char* n : {"tiny_bytelevel", "tiny_metaspace", "tiny_metaspace_norm", "qwen3",
                        "llama3", "mistral", "llama_gguf"})
    EXPECT_TRUE(expected()["tokenizers"].contains(n)) << n;
  EXPECT_GE(expected()["texts"].size(), 20u);
}

TEST(Tokenizer, TinyFixturesUseBothMergeFormats) {
  json b = json::parse(read_text(kDataDir + "/tiny_bytelevel.json"));
  json m = json::parse(read_text(kDataDir + "/tiny_metaspace.json"));
  ASSERT_FALSE(b["model"]["merges"].empty());
  ASSERT_FALSE(m["model"]["merges"].empty());
  EXPECT_TRUE(b["model"]["merges"][0].is_string());
  EXPECT_TRUE(m["model"]["merges"][0].is_array());
}

TEST(Tokenizer, SpecialTokensFoundInsideText) {
  auto t = Tokenizer::from_file(kDataDir + "/tiny_bytelevel.json");
  ASSERT_TRUE(t.ok()) << t.message();
  auto eot = t->token_id("<|endoftext|>");
  ASSERT_TRUE(eot.has_value());
  auto ids = t->encode("ab<|endoftext|>cd");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), *eot), 1);
  EXPECT_EQ(t->decode(ids), "ab<|endoftext|>cd");
  EXPECT_EQ(t->decode(ids, /*skip_special=*/true), "abcd");
  // A broken special token is plain text.
  auto ids2 = t->encode("ab<|endoftext|cd");
  EXPECT_EQ(std::count(ids2.begin(), ids2.end(), *eot), 0);
}

TEST(Tokenizer, ByteFallbackPieces) {
  auto t = Tokenizer::from_file(kDataDir + "/tiny_metaspace.json");
  ASSERT_TRUE(t.ok()) << t.message();
  auto ids = t->encode("\xF0\x9F\x99\x82");  // an emoji the small vocabulary lacks
  auto pieces = t->pieces(ids);
  std::vector<std::string> want = {"<0xF0>", "<0x9F>", "<0x99>", "<0x82>"};
  ASSERT_GE(pieces.size(), 4u);
  EXPECT_EQ(std::vector<std::string>(pieces.end() - 4, pieces.end()), want);
  EXPECT_EQ(t->decode(ids), "\xF0\x9F\x99\x82");
}

TEST(Tokenizer, BosEosFromTokenizerConfig) {
  fs::path dir = fs::temp_directory_path() / ("gb_tok_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(kDataDir + "/tiny_metaspace.json", dir / "tokenizer.json",
                fs::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": "<s>", "eos_token": {"content": "</s>", "special": true}})";
  auto t = Tokenizer::from_file((dir / "tokenizer.json").string());
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "<nope>"})";
  auto bad = Tokenizer::from_file((dir / "tokenizer.json").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("tokenizer_config.json: $.eos_token"), std::string::npos)
      << bad.message();
  fs::remove_all(dir);

  auto plain = Tokenizer::from_file(kDataDir + "/tiny_bytelevel.json");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->bos_id().has_value());
  EXPECT_FALSE(plain->eos_id().has_value());
}

TEST(Tokenizer, PeerBosEos) {
  std::string dir = kSharedDir + "/peers/tokenizers";
  if (!fs::exists(dir + "/mistral/tokenizer.json"))
    GTEST_SKIP() << "the peer tokenizer files are absent (" << dir << ")";
  auto m = Tokenizer::from_file(dir + "/mistral/tokenizer.json");
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->bos_id(), 1);
  EXPECT_EQ(m->eos_id(), 2);
  EXPECT_EQ(m->token_id("▁Hello"), 22557);
  auto q = Tokenizer::from_file(dir + "/qwen3/tokenizer.json");
  ASSERT_TRUE(q.ok()) << q.message();
  EXPECT_FALSE(q->bos_id().has_value());
  EXPECT_EQ(q->eos_id(), q->token_id("<|im_end|>"));
  auto l = Tokenizer::from_file(dir + "/llama3/tokenizer.json");
  ASSERT_TRUE(l.ok()) << l.message();
  EXPECT_EQ(l->bos_id(), 128000);
  EXPECT_EQ(l->eos_id(), 128001);
}

TEST(Tokenizer, ByteLevelRoundTripsAnyBytes) {
  auto t = Tokenizer::byte_level(1000);
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(t->vocab_size(), 1000);
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    std::string s(rng() % 300, '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xFF);
    auto ids = t->encode(s);
    ASSERT_EQ(ids.size(), s.size());
    for (size_t i = 0; i < s.size(); ++i) ASSERT_EQ(ids[i], static_cast<unsigned char>(s[i]));
    ASSERT_EQ(t->decode(ids), s);
  }
  std::string text = "héllo 世界 👨‍👩‍👧 <|endoftext|>\n\t";
  EXPECT_EQ(t->decode(t->encode(text)), text);
  EXPECT_EQ(t->pieces({999})[0], "<|filler_999|>");
  EXPECT_EQ(t->decode({1000, 2000, -1}), "");  // out of range: skipped
}

TEST(Tokenizer, ByteLevelNeeds256) {
  auto t = Tokenizer::byte_level(100);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find("256"), std::string::npos) << t.message();
}

// Errors name the file and the JSON path.
Result<Tokenizer> load_modified(const std::function<void(json&)>& edit) {
  json j = json::parse(read_text(kDataDir + "/tiny_bytelevel.json"));
  edit(j);
  return Tokenizer::from_json_text(j.dump(), "mod.json");
}

void expect_error(const Result<Tokenizer>& r, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "expected an error with " << needle;
  EXPECT_NE(r.message().find(needle), std::string::npos) << r.message();
  EXPECT_EQ(r.message().rfind("mod.json: ", 0), 0u) << r.message();
}

TEST(Tokenizer, ErrorsNameFileAndPath) {
  expect_error(load_modified([](json& j) { j["model"]["merges"][3] = 5; }), "$.model.merges[3]");
  expect_error(load_modified([](json& j) { j["model"]["merges"][2] = "a b c"; }),
               "$.model.merges[2]");
  expect_error(load_modified([](json& j) { j["model"]["merges"][1] = "zzzq Ġ"; }),
               "$.model.merges[1]: token \"zzzq\" is not in the vocabulary");
  expect_error(load_modified([](json& j) { j["model"]["vocab"] = 3; }), "$.model.vocab");
  expect_error(load_modified([](json& j) { j["model"]["type"] = "WordPiece"; }), "$.model.type");
  expect_error(load_modified([](json& j) { j["normalizer"] = {{"type", "BertNormalizer"}}; }),
               "$.normalizer.type");
  expect_error(load_modified([](json& j) {
                 j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
               }),
               "$.pre_tokenizer.pretokenizers[0].pattern.Regex");
  expect_error(load_modified([](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }),
               "$.decoder.type");
  expect_error(load_modified([](json& j) { j["added_tokens"][0]["id"] = "x"; }),
               "$.added_tokens[0].id");
  auto missing = Tokenizer::from_file("/nonexistent/tokenizer.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("/nonexistent/tokenizer.json"), std::string::npos);
  auto notjson = Tokenizer::from_json_text("{", "bad.json");
  ASSERT_FALSE(notjson.ok());
  EXPECT_NE(notjson.message().find("bad.json"), std::string::npos);
}

}  // namespace tokenizer_test
}  // namespace
}  // namespace gb::engine

// GGUF files with a SentencePiece vocabulary (tokenizer.ggml.model "llama"): the
// embedded tokenizer encodes id for id as sentencepiece does (tests/data/spm_gguf,
// written by tools/gen_spm_gguf.py: texts with byte fallback, random texts, and the
// hashes of the ~50k ids of a whole book), decodes back, adds BOS as configured; the
// tokenizer.json it is built from ranks merges by score; malformed vocabularies give
// errors naming the file and the key; and, where ../shared holds it, Mistral's
// vocabulary written as llama.cpp writes it encodes as its Hugging Face tokenizer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/spec/gguf/gguf_config.h"
#include "engine/spec/gguf/gguf_header.h"
#include "engine/tokenizer/gguf_vocab.h"
#include "engine/weights/gguf/gguf_file.h"
#include "engine/weights/gguf/gguf_weights.h"
#include "engine/weights/gguf/gguf_writer.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/weights/weight_source.h"

namespace gb::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using W = GgufWriteValue;

const std::string kDataDir = std::string(GB_SOURCE_DIR) + "/tests/data/spm_gguf";
const std::string kGguf = kDataDir + "/tiny-spm.gguf";

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const json& expected() {
  static const json j = json::parse(read_file(kDataDir + "/expected_ids.json"));
  return j;
}

std::vector<int32_t> ids_of(const json& a) { return a.get<std::vector<int32_t>>(); }

// FNV-1a 64 of the ids as little-endian int32 (as the generator hashes them).
std::string fnv1a64(const std::vector<int32_t>& ids) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (int32_t id : ids)
    for (int k = 0; k < 4; ++k) {
      h ^= (static_cast<uint32_t>(id) >> (8 * k)) & 0xFF;
      h *= 0x100000001B3ull;
    }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

class GgufSpm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto w = open_weights("gguf:" + kGguf);
    ASSERT_TRUE(w.ok()) << w.message();
    weights_ = std::move(*w).release();
  }
  static void TearDownTestSuite() {
    delete weights_;
    weights_ = nullptr;
  }
  static const Tokenizer& tok() { return *weights_->tokenizer(); }
  static inline WeightSource* weights_ = nullptr;
};

TEST_F(GgufSpm, OpensWithTheTokenizerAndTheIds) {
  ASSERT_NE(weights_, nullptr);
  const ModelConfig& c = weights_->config();
  EXPECT_EQ(c.vocab_size, expected()["vocab_size"].get<int64_t>());
  EXPECT_EQ(c.bos_token_id, expected()["bos_id"].get<int64_t>());
  EXPECT_EQ(c.eos_token_id, expected()["eos_id"].get<int64_t>());
  ASSERT_NE(weights_->tokenizer(), nullptr);
  EXPECT_EQ(tok().vocab_size(), c.vocab_size);
  EXPECT_EQ(tok().token_id("<s>"), c.bos_token_id);
  EXPECT_EQ(tok().token_id("</s>"), c.eos_token_id);
  EXPECT_EQ(tok().token_id("<unk>"), expected()["unk_id"].get<int32_t>());
  EXPECT_EQ(tok().source(), kGguf + " (embedded tokenizer)");
  EXPECT_TRUE(weights_->tensor("model.embed_tokens.weight").ok());
}

TEST_F(GgufSpm, EncodesAsSentencepiece) {
  ASSERT_NE(weights_, nullptr);
  int byte_tokens = 0;
  for (const json& c : expected()["cases"]) {
    const std::string text = c["text"];
    SCOPED_TRACE("text: \"" + text + "\"");
    const std::vector<int32_t> ids = tok().encode(text);
    EXPECT_EQ(ids, ids_of(c["ids"]));
    EXPECT_EQ(tok().pieces(ids), c["pieces"].get<std::vector<std::string>>());
    EXPECT_EQ(tok().encode(text, /*add_special=*/true), ids_of(c["ids_with_bos"]));
    for (const std::string& p : tok().pieces(ids)) byte_tokens += p.size() == 6 && p.starts_with("<0x");
  }
  EXPECT_GT(byte_tokens, 100);  // the byte fallback was exercised
}

TEST_F(GgufSpm, DecodesAsSentencepiece) {
  ASSERT_NE(weights_, nullptr);
  for (const json& c : expected()["cases"]) {
    const std::string text = c["text"], decoded = c["decoded"];
    SCOPED_TRACE("text: \"" + text + "\"");
    EXPECT_EQ(tok().decode(ids_of(c["ids"])), decoded);
    EXPECT_EQ(tok().decode(ids_of(c["ids_with_bos"]), /*skip_special=*/true), decoded);
    // Text round-trips unless it holds U+2581 itself (which decodes as a space).
    if (text.find("\xE2\x96\x81") == std::string::npos) {
      EXPECT_EQ(decoded, text);
    }
  }
}

TEST_F(GgufSpm, EncodesRandomPieceSequencesAsSentencepiece) {
  ASSERT_NE(weights_, nullptr);
  ASSERT_GE(expected()["random"].size(), 100u);
  for (const json& c : expected()["random"]) {
    const std::string text = c["text"];
    SCOPED_TRACE("text: \"" + text + "\"");
    EXPECT_EQ(tok().encode(text), ids_of(c["ids"]));
  }
}

TEST_F(GgufSpm, EncodesABookAsSentencepiece) {
  ASSERT_NE(weights_, nullptr);
  const json& ref = expected()["corpus"];
  const std::string text = read_file(std::string(GB_SOURCE_DIR) + "/" + ref["file"].get<std::string>());
  ASSERT_FALSE(text.empty());
  const std::vector<int32_t> whole = tok().encode(text);
  EXPECT_EQ(whole.size(), ref["whole"]["n_ids"].get<size_t>());
  EXPECT_EQ(fnv1a64(whole), ref["whole"]["fnv1a64"].get<std::string>());
  std::vector<int32_t> lines;
  size_t n_lines = 0;
  for (size_t start = 0;; ++n_lines) {
    const size_t end = text.find('\n', start);
    const std::vector<int32_t> ids = tok().encode(std::string_view(text).substr(start, end - start));
    lines.insert(lines.end(), ids.begin(), ids.end());
    if (end == std::string::npos) break;
    start = end + 1;
  }
  EXPECT_EQ(n_lines + 1, ref["lines"]["n_lines"].get<size_t>());
  EXPECT_EQ(lines.size(), ref["lines"]["n_ids"].get<size_t>());
  EXPECT_EQ(fnv1a64(lines), ref["lines"]["fnv1a64"].get<std::string>());
  EXPECT_EQ(tok().decode(whole), text);
}

// Special tokens in the text are matched (llama.cpp with parse_special), and the text
// after one gets its "▁" prefix again.
TEST_F(GgufSpm, SpecialTokensInTheText) {
  ASSERT_NE(weights_, nullptr);
  const int32_t eos = static_cast<int32_t>(weights_->config().eos_token_id);
  std::vector<int32_t> want = tok().encode("Hello");
  want.push_back(eos);
  for (int32_t id : tok().encode("world")) want.push_back(id);
  EXPECT_EQ(tok().encode("Hello</s>world"), want);
  EXPECT_EQ(tok().decode(want, /*skip_special=*/true), "Hello world");
}

// ---- the tokenizer.json built from a hand-made vocabulary ----

GgufWriteMetadata spm_meta(std::vector<std::string> tokens, std::vector<float> scores, std::vector<int32_t> types) {
  return {{"tokenizer.ggml.model", W::string("llama")},
          {"tokenizer.ggml.tokens", W::string_array(std::move(tokens))},
          {"tokenizer.ggml.scores", W::f32_array(std::move(scores))},
          {"tokenizer.ggml.token_type", W::i32_array(std::move(types))},
          {"tokenizer.ggml.bos_token_id", W::u32(1)},
          {"tokenizer.ggml.eos_token_id", W::u32(2)}};
}

// The tokenizer.json text (or the error) of a header holding `md`.
Result<std::string> json_of(const GgufWriteMetadata& md) {
  static std::string bytes;  // the header's strings point into it
  bytes = gguf_file_bytes(md, {});
  auto h = parse_gguf_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "t.gguf");
  if (!h.ok()) return h.error();
  return gguf_tokenizer_json(*h);
}

Result<Tokenizer> tokenizer_of(const GgufWriteMetadata& md) {
  auto text = json_of(md);
  if (!text.ok()) return text.error();
  return Tokenizer::from_json_text(*text, "t.gguf");
}

// <unk> <s> </s>, the byte tokens <0x61> ('a') and <0x0A>, then pieces.
GgufWriteMetadata small_vocab(float ab_score, float bc_score) {
  return spm_meta({"<unk>", "<s>", "</s>", "<0x61>", "<0x0A>", "\xE2\x96\x81", "a", "b", "c", "ab", "bc",
                   "\xE2\x96\x81" "a", "\xE2\x96\x81" "ab", "\xE2\x96\x81" "abc"},
                  {0, 0, 0, 0, 0, -1, -10, -11, -12, ab_score, bc_score, -3, -4, -5},
                  {2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1});
}

TEST(GgufSpmJson, MergesGoByScoreNotById) {
  // "▁xabc": 'x' has neither a piece nor a byte token (<unk>), and of "ab" and "bc"
  // the one of higher score merges first, whatever their ids.
  for (auto [ab, bc, want] : {std::tuple{-2.0f, -6.0f, "ab|c"}, std::tuple{-6.0f, -2.0f, "a|bc"}}) {
    auto t = tokenizer_of(small_vocab(ab, bc));
    ASSERT_TRUE(t.ok()) << t.message();
    std::vector<std::string> p = t->pieces(t->encode("xabc"));
    std::string joined;
    for (size_t i = 1; i < p.size(); ++i) joined += (i > 1 ? "|" : "") + p[i];
    EXPECT_EQ(p[0], "\xE2\x96\x81");
    EXPECT_EQ(joined, std::string("<unk>|") + want);
  }
  auto t = tokenizer_of(small_vocab(-2, -6));
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(t->pieces(t->encode("abc")), std::vector<std::string>{"\xE2\x96\x81" "abc"});
  EXPECT_EQ(t->encode("abc", true), (std::vector<int32_t>{1, 13}));
  EXPECT_EQ(t->pieces(t->encode("a\n")), (std::vector<std::string>{"\xE2\x96\x81" "a", "<0x0A>"}));
  EXPECT_EQ(t->decode(t->encode(" ab\nc")), " ab\nc");
}

TEST(GgufSpmJson, TheDocument) {
  auto text = json_of(small_vocab(-2, -6));
  ASSERT_TRUE(text.ok()) << text.message();
  const json j = json::parse(*text);
  EXPECT_EQ(j["model"]["byte_fallback"], true);
  EXPECT_EQ(j["model"]["unk_token"], "<unk>");
  EXPECT_EQ(j["normalizer"]["normalizers"][0]["type"], "Prepend");
  EXPECT_EQ(j["post_processor"]["single"][0]["SpecialToken"]["id"], "<s>");
  EXPECT_EQ(j["decoder"]["decoders"].back()["type"], "Strip");
  ASSERT_EQ(j["added_tokens"].size(), 3u);  // <unk>, <s>, </s>; not the byte tokens
  // Every split into two pieces, by the merged piece's score: ▁a (-3), ▁ab (-4, two
  // splits: ▁a+b and ▁+ab), ▁abc (-5: ▁ab+c, ▁a+bc), ab (-2 here, so first), bc.
  std::vector<std::string> merges;
  for (const json& m : j["model"]["merges"]) merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
  const std::string s = "\xE2\x96\x81";
  EXPECT_EQ(merges, (std::vector<std::string>{"a b", s + " a", s + "a b", s + " ab", s + "ab c", s + "a bc", "b c"}));

  GgufWriteMetadata md = small_vocab(-2, -6);
  md.push_back({"tokenizer.ggml.add_space_prefix", W::boolean(false)});
  md.push_back({"tokenizer.ggml.add_bos_token", W::boolean(false)});
  auto plain = json_of(md);
  ASSERT_TRUE(plain.ok()) << plain.message();
  const json p = json::parse(*plain);
  EXPECT_EQ(p["normalizer"]["type"], "Replace");
  EXPECT_TRUE(p["post_processor"].is_null());
  EXPECT_NE(p["decoder"]["decoders"].back()["type"], "Strip");
  auto t = Tokenizer::from_json_text(*plain, "t.gguf");
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_EQ(t->encode("ab c", true), t->encode("ab c"));  // no BOS
  EXPECT_EQ(t->pieces(t->encode("ab c")), (std::vector<std::string>{"ab", s, "c"}));
  EXPECT_EQ(t->decode(t->encode(" ab c")), " ab c");  // nothing stripped
  EXPECT_EQ(t->pieces(t->encode("abc")), (std::vector<std::string>{"ab", "c"}));
}

TEST(GgufSpmJson, ErrorsNameTheFileAndTheKey) {
  GgufWriteMetadata md = small_vocab(-2, -6);
  md.erase(md.begin() + 2);  // the scores
  auto e = json_of(md);
  ASSERT_FALSE(e.ok());
  EXPECT_HAS(e.message(), "t.gguf");
  EXPECT_HAS(e.message(), "tokenizer.ggml.scores");

  md = small_vocab(-2, -6);
  md[2].second = W::f32_array({0, 0});
  e = json_of(md);
  ASSERT_FALSE(e.ok());
  EXPECT_HAS(e.message(), "t.gguf: tokenizer.ggml.scores has 2 entries but there are 14 tokens");

  md = small_vocab(-2, -6);
  md.push_back({"tokenizer.ggml.unknown_token_id", W::u32(99)});
  e = json_of(md);
  ASSERT_FALSE(e.ok());
  EXPECT_HAS(e.message(), "t.gguf: tokenizer.ggml.unknown_token_id 99 is not a token id");

  md = small_vocab(-2, -6);
  md[4].second = W::u32(99);  // bos_token_id, added by default
  e = json_of(md);
  ASSERT_FALSE(e.ok());
  EXPECT_HAS(e.message(), "t.gguf: tokenizer.ggml.bos_token_id 99 is not a token id");

  md = small_vocab(-2, -6);
  md[0].second = W::string("t5");
  e = json_of(md);
  ASSERT_FALSE(e.ok());
  EXPECT_HAS(e.message(), "t.gguf: tokenizer.ggml.model 't5' is not supported");
}

// Mistral's vocabulary written into a GGUF as llama.cpp's converter writes a
// SentencePiece one encodes as its Hugging Face tokenizer.json. The scores are not in
// tokenizer.json; sentencepiece's BPE scores follow the merge order, so each piece
// gets minus the rank of the first merge that makes it (characters score lowest).
TEST(GgufSpmPeer, MistralVocabularyMatchesItsTokenizerJson) {
  const std::string path = std::string(GB_SOURCE_DIR) + "/../shared/peers/tokenizers/mistral/tokenizer.json";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is absent (../shared beside the repository)";
  const json j = json::parse(read_file(path));
  const json& vocab = j["model"]["vocab"];
  std::vector<std::string> tokens(vocab.size());
  for (const auto& [tok, id] : vocab.items()) tokens.at(id.get<size_t>()) = tok;
  std::vector<float> scores(tokens.size(), NAN);
  std::vector<int32_t> types(tokens.size(), 1);
  int64_t rank = 0;
  for (const json& m : j["model"]["merges"]) {
    const std::string piece = m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + m[1].get<std::string>();
    const std::string merged = m.is_string() ? piece.substr(0, piece.find(' ')) + piece.substr(piece.find(' ') + 1)
                                             : piece;
    float& s = scores.at(vocab.at(merged).get<size_t>());
    if (std::isnan(s)) s = static_cast<float>(-rank);
    ++rank;
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].size() == 6 && tokens[i].starts_with("<0x")) types[i] = 6;
    if (std::isnan(scores[i])) scores[i] = types[i] == 6 ? 0.0f : -1e6f - static_cast<float>(i);
  }
  types[0] = 2;
  types[1] = types[2] = 3;
  scores[0] = scores[1] = scores[2] = 0;
  auto ours = tokenizer_of(spm_meta(tokens, scores, types));
  ASSERT_TRUE(ours.ok()) << ours.message();
  auto ref = Tokenizer::from_file(path);
  ASSERT_TRUE(ref.ok()) << ref.message();
  EXPECT_EQ(ours->vocab_size(), ref->vocab_size());
  std::vector<std::string> texts;
  for (const json& c : expected()["cases"]) texts.push_back(c["text"]);
  for (const json& c : expected()["random"]) texts.push_back(c["text"]);
  texts.push_back(read_file(std::string(GB_SOURCE_DIR) + "/" + expected()["corpus"]["file"].get<std::string>()));
  texts.push_back("def f(x):\n    return {'a': x ** 2}  # comment\n\n\n        indented");
  texts.push_back("<s>[INST] What is 2+2? [/INST]</s>");
  for (const std::string& t : texts) {
    SCOPED_TRACE("text: \"" + t.substr(0, 200) + "\"");
    EXPECT_EQ(ours->encode(t), ref->encode(t));
    EXPECT_EQ(ours->encode(t, true), ref->encode(t, true));
    EXPECT_EQ(ours->decode(ours->encode(t)), ref->decode(ref->encode(t)));
  }
}

}  // namespace
}  // namespace gb::engine

// GGUF vocabularies as tokenizer.json (engine/tokenizer/gguf_vocab.h).
#include "engine/tokenizer/gguf_vocab.h"

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace gb::engine {
namespace {

using nlohmann::json;

// Pre-tokenizer regexes of llama.cpp's BPE pre-tokenizer types (llama-vocab.cpp).
// Qwen2's and Llama 3's are the ones their tokenizer.json files carry; llama.cpp's
// default type applies four regexes in turn.
constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::vector<std::string> kDefaultRegexes = {
    R"([\p{P}\$\+<=>\^~\|]+)",
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))",
    R"(\p{N}+)",
    R"([0-9][0-9][0-9])",
};

json split(const std::string& regex) {
  return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
}
json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", use_regex}};
}

// The post-processor adding BOS (tokenizer.ggml.bos_token_id) and/or EOS around the
// text; null when it adds neither.
Result<json> special_template(const GgufHeader& h, const std::vector<std::string_view>& tokens, bool add_bos,
                              bool add_eos) {
  if (!add_bos && !add_eos) return json(nullptr);
  json single = json::array();
  json special = json::object();
  for (auto [on, key] : {std::pair{add_bos, "tokenizer.ggml.bos_token_id"}, std::pair{false, ""},
                         std::pair{add_eos, "tokenizer.ggml.eos_token_id"}}) {
    if (key[0] == '\0') {
      single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
      continue;
    }
    if (!on) continue;
    Result<int64_t> id = h.get_int(key);
    if (!id) return Error{id.message() + " (the tokenizer adds it)"};
    if (*id < 0 || static_cast<uint64_t>(*id) >= tokens.size())
      return Error{h.where + ": " + key + " " + std::to_string(*id) + " is not a token id"};
    const std::string tok(tokens[static_cast<size_t>(*id)]);
    if (tok.empty()) return Error{h.where + ": " + key + " " + std::to_string(*id) + " is an empty token"};
    single.push_back({{"SpecialToken", {{"id", tok}, {"type_id", 0}}}});
    special[tok] = {{"id", tok}, {"ids", {*id}}, {"tokens", {tok}}};
  }
  return json{{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", special}};
}

Result<std::string> dump_tokenizer(const GgufHeader& h, const json& doc) {
  try {
    return doc.dump();
  } catch (const json::exception& e) {
    return Error{h.where + ": the embedded tokenizer has a token or merge that is not valid UTF-8 (" + e.what() + ")"};
  }
}

json added_token(size_t id, const std::string& content, bool special) {
  return {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
          {"normalized", false}, {"special", special}};
}

// llama.cpp's token types (tokenizer.ggml.token_type).
constexpr int64_t kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4, kTypeByte = 6;

// A SentencePiece vocabulary (tokenizer.ggml.model "llama") as a BPE tokenizer.json
// that encodes as llama.cpp's SPM tokenizer and sentencepiece's BPE model do. They
// put "▁" in front of the text (tokenizer.ggml.add_space_prefix, default true) and
// for every space, start from the characters, and repeatedly merge the adjacent pair
// whose concatenation is a vocabulary piece of the highest score (leftmost among
// equal scores); a character outside the vocabulary becomes its <0xNN> byte tokens.
// A BPE model does the same with one merge (a, b) for every way of writing a piece as
// two vocabulary pieces, the merges ranked by the merged piece's score, highest first
// (what Hugging Face's converters do). The two can differ only on a tie: two pending
// pairs of equal score but different merges (SPM takes the leftmost, BPE the one
// listed first). With distinct piece scores (sentencepiece's BPE training gives piece
// i the score -i) that takes two different splits of one piece pending at once;
// tests/data/spm_gguf checks ~100k ids against sentencepiece without meeting one.
// Merge targets are the normal, user-defined and unused pieces (sentencepiece's; not
// unknown, control or byte tokens). Unknown, control and user-defined tokens are
// added tokens matched in the text first (llama.cpp with parse_special), and every
// text segment after one gets the "▁" prefix again, as llama.cpp does.
Result<std::string> spm_tokenizer_json(const GgufHeader& h, const std::vector<std::string_view>& tokens,
                                       const std::vector<int64_t>& types) {
  const std::string& where = h.where;
  Result<std::vector<double>> scores = h.get_float_array("tokenizer.ggml.scores");
  if (!scores) return scores.error();
  if (scores->size() != tokens.size())
    return Error{where + ": tokenizer.ggml.scores has " + std::to_string(scores->size()) +
                 " entries but there are " + std::to_string(tokens.size()) + " tokens"};
  Result<bool> add_bos = h.get_bool("tokenizer.ggml.add_bos_token", true);
  if (!add_bos) return add_bos.error();
  Result<bool> add_eos = h.get_bool("tokenizer.ggml.add_eos_token", false);
  if (!add_eos) return add_eos.error();
  Result<bool> add_space_prefix = h.get_bool("tokenizer.ggml.add_space_prefix", true);
  if (!add_space_prefix) return add_space_prefix.error();
  auto type_of = [&](size_t i) { return types.empty() ? kTypeNormal : types[i]; };

  // The vocabulary (an empty token is left out; a duplicate keeps its first id).
  json vocab = json::object();
  json added = json::array();
  std::unordered_map<std::string_view, size_t> id_of;
  std::vector<size_t> lengths;  // the pieces' distinct byte lengths, ascending
  std::optional<size_t> first_unk;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string_view tok = tokens[i];
    if (tok.empty()) continue;
    if (!id_of.emplace(tok, i).second) continue;
    vocab[std::string(tok)] = i;
    lengths.push_back(tok.size());
    const int64_t type = type_of(i);
    if (type == kTypeUnknown && !first_unk) first_unk = i;
    if (type == kTypeUnknown || type == kTypeControl || type == kTypeUserDefined)
      added.push_back(added_token(i, std::string(tok), type != kTypeUserDefined));
  }
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());

  json unk = nullptr;
  if (h.contains("tokenizer.ggml.unknown_token_id")) {
    Result<int64_t> id = h.get_int("tokenizer.ggml.unknown_token_id");
    if (!id) return id.error();
    if (*id < 0 || static_cast<uint64_t>(*id) >= tokens.size() || tokens[static_cast<size_t>(*id)].empty())
      return Error{where + ": tokenizer.ggml.unknown_token_id " + std::to_string(*id) + " is not a token id"};
    unk = std::string(tokens[static_cast<size_t>(*id)]);
  } else if (first_unk) {
    unk = std::string(tokens[*first_unk]);
  }

  // The merges: every split of a mergeable piece at a character boundary into two
  // pieces, by the piece's score (NaN lowest), then id, then the longer left part.
  struct Merge {
    double score;
    size_t id, left;  // the merged piece, the byte length of its left part
  };
  std::vector<Merge> merges;
  for (const auto& [tok, i] : id_of) {
    const int64_t type = type_of(i);
    if (type == kTypeUnknown || type == kTypeControl || type == kTypeByte) continue;
    const double score = std::isnan((*scores)[i]) ? -HUGE_VAL : (*scores)[i];
    for (size_t k : lengths) {
      if (k >= tok.size()) break;
      if ((static_cast<unsigned char>(tok[k]) & 0xC0) == 0x80) continue;  // inside a character
      if (id_of.count(tok.substr(0, k)) && id_of.count(tok.substr(k))) merges.push_back({score, i, k});
    }
  }
  std::sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.id != b.id) return a.id < b.id;
    return a.left > b.left;
  });
  json merge_list = json::array();
  for (const Merge& m : merges) {
    const std::string_view tok = tokens[m.id];
    merge_list.push_back({std::string(tok.substr(0, m.left)), std::string(tok.substr(m.left))});
  }

  const json replace_space = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}};
  json normalizer = replace_space;
  if (*add_space_prefix)
    normalizer = {{"type", "Sequence"},
                  {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}}, replace_space}}};
  json decoders = {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                   {{"type", "ByteFallback"}},
                   {{"type", "Fuse"}}};
  if (*add_space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  Result<json> post = special_template(h, tokens, *add_bos, *add_eos);
  if (!post) return post.error();

  json doc = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", normalizer},
      {"pre_tokenizer", nullptr},
      {"post_processor", *post},
      {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", unk}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", true}, {"byte_fallback", true}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", merge_list}}},
  };
  return dump_tokenizer(h, doc);
}

}  // namespace

Result<std::string> gguf_tokenizer_json(const GgufHeader& h) {
  const std::string& where = h.where;
  Result<std::string> model = h.get_string("tokenizer.ggml.model");
  if (!model) return model.error();
  if (*model != "gpt2" && *model != "llama")
    return Error{where + ": tokenizer.ggml.model '" + *model +
                 "' is not supported (only 'gpt2', byte-level BPE, and 'llama', SentencePiece)"};
  Result<std::vector<std::string_view>> tokens = h.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) return tokens.error();
  std::vector<int64_t> types;
  if (h.contains("tokenizer.ggml.token_type")) {
    Result<std::vector<int64_t>> t = h.get_int_array("tokenizer.ggml.token_type");
    if (!t) return t.error();
    if (t->size() != tokens->size())
      return Error{where + ": tokenizer.ggml.token_type has " + std::to_string(t->size()) + " entries but there are " +
                   std::to_string(tokens->size()) + " tokens"};
    types = std::move(*t);
  }
  if (*model == "llama") return spm_tokenizer_json(h, *tokens, types);

  Result<std::vector<std::string_view>> merges = h.get_string_array("tokenizer.ggml.merges");
  if (!merges) return merges.error();
  Result<std::string> pre = h.get_string("tokenizer.ggml.pre", "default");
  if (!pre) return pre.error();

  // The pre-tokenizer, and the llama3 type's defaults (llama.cpp: BOS added, whole
  // words found in the vocabulary before merging).
  json pre_tokenizer;
  bool llama3 = false;
  if (*pre == "qwen2" || *pre == "deepseek-r1-qwen") {
    pre_tokenizer = {{"type", "Sequence"}, {"pretokenizers", {split(kQwen2Regex), byte_level(false)}}};
  } else if (*pre == "llama-bpe" || *pre == "llama3" || *pre == "llama-v3" || *pre == "smaug-bpe") {
    pre_tokenizer = {{"type", "Sequence"}, {"pretokenizers", {split(kLlama3Regex), byte_level(false)}}};
    llama3 = true;
  } else if (*pre == "gpt-2" || *pre == "phi-2" || *pre == "olmo" || *pre == "mpt") {
    pre_tokenizer = byte_level(true);  // GPT-2's own regex
  } else if (*pre == "default") {
    json seq = json::array();
    for (const std::string& r : kDefaultRegexes) seq.push_back(split(r));
    seq.push_back(byte_level(false));
    pre_tokenizer = {{"type", "Sequence"}, {"pretokenizers", seq}};
  } else {
    return Error{where + ": tokenizer.ggml.pre '" + *pre +
                 "' is not supported (qwen2, deepseek-r1-qwen, llama-bpe, llama3, llama-v3, smaug-bpe, gpt-2, "
                 "phi-2, olmo, mpt, default)"};
  }
  Result<bool> add_bos = h.get_bool("tokenizer.ggml.add_bos_token", llama3);
  if (!add_bos) return add_bos.error();
  Result<bool> add_eos = h.get_bool("tokenizer.ggml.add_eos_token", false);
  if (!add_eos) return add_eos.error();

  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < tokens->size(); ++i) {
    const std::string tok((*tokens)[i]);
    if (tok.empty()) return Error{where + ": tokenizer.ggml.tokens[" + std::to_string(i) + "] is empty"};
    if (!vocab.contains(tok)) vocab[tok] = i;  // a duplicate keeps its first id
    // 3 = control, 4 = user-defined: matched in the text before BPE.
    const int64_t type = types.empty() ? 1 : types[i];
    if (type == kTypeControl || type == kTypeUserDefined) added.push_back(added_token(i, tok, type == kTypeControl));
  }
  json merge_list = json::array();
  for (std::string_view m : *merges) merge_list.push_back(std::string(m));

  Result<json> post = special_template(h, *tokens, *add_bos, *add_eos);
  if (!post) return post.error();
  if (post->is_null()) *post = byte_level(false);

  json doc = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer},
      {"post_processor", *post},
      {"decoder", byte_level(false)},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", llama3},
        {"vocab", vocab}, {"merges", merge_list}}},
  };
  return dump_tokenizer(h, doc);
}

}  // namespace gb::engine

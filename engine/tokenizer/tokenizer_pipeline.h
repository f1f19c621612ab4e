// The pieces of a Hugging Face tokenizer's pipeline (engine/tokenizer/tokenizer.h
// puts them together): normalizers, pre-tokenizers, the post-processor and the
// decoders as tokenizer.json describes them, parsed with a JSON path in every
// error, and each run on text. Private to the tokenizer's implementation
// (tokenizer.cc): not part of the engine's interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "engine/tokenizer/tokenizer_text.h"

namespace gb::engine::tok {

using nlohmann::json;

struct Normalizer {
  enum Kind { kNFC, kNFD, kNFKC, kNFKD, kPrepend, kReplace, kLowercase, kSequence } kind = kSequence;
  std::string text;     // Prepend: what; Replace: the literal pattern
  std::string content;  // Replace: the replacement
  std::shared_ptr<const Regex> regex;  // Replace with a Regex pattern
  std::vector<Normalizer> children;
};

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreTokenizer {
  enum Kind { kByteLevel, kSplit, kMetaspace, kDigits, kSequence } kind = kSequence;
  bool add_prefix_space = false;  // ByteLevel
  bool use_regex = false;         // ByteLevel
  std::shared_ptr<const Regex> regex;  // Split (Regex), ByteLevel (use_regex), Digits
  std::string literal;                 // Split (String), Metaspace (replacement)
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  enum Prepend { kAlways, kFirst, kNever } prepend = kAlways;  // Metaspace
  bool split = true;                                          // Metaspace
  std::vector<PreTokenizer> children;
};

struct PostItem {
  bool special = false;          // SpecialToken (else the sequence A)
  std::vector<int32_t> ids;      // the special token's ids
};

struct PostProcessor {
  enum Kind { kNone, kTemplate, kSequence } kind = kNone;
  std::vector<PostItem> single;
  std::vector<PostProcessor> children;
};

struct Decoder {
  enum Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace, kSequence } kind = kSequence;
  std::string pattern, content;  // Replace; Strip: content; Metaspace: replacement in content
  size_t start = 0, stop = 0;    // Strip
  bool prepend = true;           // Metaspace: prepend_scheme != never
  bool lossy = true;             // ByteLevel: invalid UTF-8 -> U+FFFD (false: raw bytes)
  std::vector<Decoder> children;
};

struct AddedToken {
  std::string original;  // as in the file
  std::string content;   // what is matched: normalized for normalized tokens
  int32_t id = 0;
  bool special = false, normalized = false, lstrip = false, rstrip = false, single_word = false;
};

// A piece of text on its way through the pre-tokenizers; `at_start` is true when
// it begins at offset 0 of the original text (Metaspace's prepend_scheme "first").
struct Piece {
  std::string text;
  bool at_start = false;
};


// Whether the UTF-8 character at s[i] is whitespace (its length in *len).
bool is_space_char(std::string_view s, size_t i, size_t* len);

std::string run_normalizer(const Normalizer& n, std::string s);
std::vector<Piece> run_pre_tokenizer(const PreTokenizer& pt, std::vector<Piece> pieces);
std::vector<std::string> run_decoder(const Decoder& d, std::vector<std::string> toks);

// ---- JSON parsing with paths ----

// The file errors name.
struct Ctx {
  std::string file;
  Error err(const std::string& path, const std::string& what) const {
    return Error{file + ": " + path + ": " + what};
  }
};

Result<std::string> get_str(const Ctx& c, const json& j, const std::string& path, const char* key);
bool get_bool(const json& j, const char* key, bool dflt);
Result<Normalizer> parse_normalizer(const Ctx& c, const json& j, const std::string& path);
Result<PreTokenizer> parse_pre_tokenizer(const Ctx& c, const json& j, const std::string& path);
Result<Decoder> parse_decoder(const Ctx& c, const json& j, const std::string& path);

}  // namespace gb::engine::tok

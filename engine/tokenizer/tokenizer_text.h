// Text helpers of the tokenizer: a PCRE2 regex (UTF + UCP, the Unicode classes of
// the pre-tokenizer regexes), Unicode normalization (ICU), UTF-8 stepping and the
// GPT-2 byte-level alphabet.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace gb::engine::tok {

class Regex {
 public:
  // Compiles `pattern` (PCRE2, UTF + UCP, invalid UTF-8 in subjects tolerated).
  static Result<std::shared_ptr<const Regex>> compile(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Non-empty, non-overlapping matches from left to right, as [start, end) byte
  // offsets (empty matches are skipped).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const;

 private:
  Regex() = default;
  void* code_ = nullptr;  // pcre2_code_8*
};

enum class NormForm { kNFC, kNFD, kNFKC, kNFKD };
std::string unicode_normalize(std::string_view s, NormForm form);
std::string unicode_lowercase(std::string_view s);

// Length in bytes of the UTF-8 character starting at s[i] (1 for an invalid byte).
size_t utf8_len(std::string_view s, size_t i);
// The UTF-8 characters of s, each as a view into s.
std::vector<std::string_view> utf8_chars(std::string_view s);

// GPT-2's byte -> printable character table (the ByteLevel alphabet), as UTF-8.
const std::string& byte_to_unicode(uint8_t b);
// The inverse for one character (UTF-8); -1 when it is not in the alphabet.
int unicode_to_byte(std::string_view ch);

}  // namespace gb::engine::tok

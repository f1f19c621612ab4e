// Hugging Face tokenizer.json: loader, encoder and decoder.
//
// Supported (everything else is refused at load time with "FILE: $.json.path: ..."):
//   model         BPE (merges as "a b" strings or ["a", "b"] arrays; unk_token,
//                 fuse_unk, byte_fallback to <0xNN> tokens, ignore_merges)
//   normalizer    NFC, NFD, NFKC, NFKD (ICU), Prepend, Replace (String or Regex),
//                 Lowercase, Sequence
//   pre_tokenizer ByteLevel (add_prefix_space, use_regex = GPT-2's regex), Split
//                 (Regex compiled with PCRE2 in UTF+UCP mode, or String; behaviors
//                 Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous;
//                 invert), Metaspace (prepend_scheme always/first/never, split),
//                 Digits, Sequence
//   post_processor TemplateProcessing (single), ByteLevel, Sequence, Bert/Roberta
//   decoder       ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence
// Added tokens (special or not) are found inside the text before normalization
// (normalized=false) or after it (normalized=true), leftmost-longest, with
// lstrip/rstrip/single_word, as the reference implementation does.
//
// decode() differs from the reference in one documented way: the ByteLevel decoder
// returns the raw bytes (no U+FFFD replacement), so that decoding a prefix of ids
// and byte-level synthetic tokenizers round-trip any bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gb::engine {

class Tokenizer {
 public:
  // Loads PATH (a tokenizer.json). If tokenizer_config.json lies beside it, its
  // bos_token / eos_token give bos_id() / eos_id().
  static Result<Tokenizer> from_file(const std::string& path);
  // Same, from the JSON text; `name` is used in error messages.
  static Result<Tokenizer> from_json_text(std::string_view json_text, const std::string& name);
  // The tokenizer of synthetic models: ids 0..255 are the bytes (GPT-2 byte-level
  // alphabet), ids 256..vocab_size-1 are fillers "<|filler_N|>" that encode never
  // produces. Encode/decode round-trip any bytes. vocab_size must be >= 256.
  static Result<Tokenizer> byte_level(int32_t vocab_size);

  // Token ids of `text` (UTF-8). add_special applies the post-processor (e.g. a BOS).
  std::vector<int32_t> encode(std::string_view text, bool add_special = false) const;
  // The text of `ids`; ids out of range are skipped. skip_special drops special
  // added tokens.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // The vocabulary strings of `ids` ("Ġhello", "▁the", "<0x0A>"); "" when out of range.
  std::vector<std::string> pieces(const std::vector<int32_t>& ids) const;

  // One more than the largest id of the model vocabulary and the added tokens.
  int32_t vocab_size() const;
  std::optional<int32_t> token_id(std::string_view token) const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  const std::string& source() const;  // the file it was loaded from, or "byte_level:N"

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace gb::engine

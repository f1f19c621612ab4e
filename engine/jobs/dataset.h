// Text datasets for perplexity jobs. A dataset spec names a file and how to read it:
//
//   text:FILE         raw UTF-8 text read whole (wikitext's wiki.test.raw, a PG19
//                     book). A leading UTF-8 byte order mark is dropped.
//   jsonl:FILE:FIELD  one JSON object per line; FIELD is a top-level string field;
//                     the documents are joined with "\n\n". FILE may contain ':'
//                     (the spec is split on its last ':'), so FIELD cannot. Blank
//                     (whitespace-only) lines are skipped, and so are documents
//                     whose field is the empty string.
//
// The text must be valid UTF-8 (no overlong forms, surrogates or code points above
// U+10FFFF); the error gives the byte offset (and, for jsonl, the line). A dataset
// with no text but whitespace is an error. Errors name the file; jsonl errors also
// the line number (invalid JSON, not an object, missing field, non-string field).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gb::engine {

struct DatasetSpec {
  enum class Kind { kText, kJsonl };
  Kind kind = Kind::kText;
  std::string file;
  std::string field;  // kJsonl
};

// Takes a spec apart without reading anything (for validating grids early).
Result<DatasetSpec> parse_dataset_spec(const std::string& spec);

// Reads the dataset a spec names: its whole text.
Result<std::string> load_text_dataset(const std::string& spec);
Result<std::string> load_text_dataset(const DatasetSpec& spec);

// The byte offset of the first invalid UTF-8 sequence in `s`, or nullopt.
std::optional<size_t> first_invalid_utf8(std::string_view s);

}  // namespace gb::engine

// Datasets by path. A dataset spec names a file or directory and how to read it:
//
//   text:FILE         raw UTF-8 text read whole (a PG19 book), one document. A
//                     leading UTF-8 byte order mark is dropped.
//   wikitext:FILE     raw wikitext (HF wikitext-2-raw's wiki.test.raw): the text read
//                     whole, as text: does, and split into articles at its article
//                     headings, lines " = Title = " (one '=' on each side; " = = Section
//                     = = " lines are inside an article). Text before the first
//                     heading is a document of its own.
//   pg19:DIR          a directory of books, DIR/*.txt (PG19's test/ or validation/),
//                     each a document, in file-name order; other files are ignored.
//   jsonl:FILE:FIELD  one JSON object per line; FIELD is a top-level string field,
//                     one document per line; as text they are joined with "\n\n".
//                     FILE may contain ':' (the spec is split on its last ':'), so
//                     FIELD cannot. Blank (whitespace-only) lines are skipped, and so
//                     are documents whose field is the empty string.
//   jsonl:FILE:F1,F2  the same with two fields, a prompt and its answer, for the
//                     kinds that score generations (gen_accuracy): FIELD names hold no
//                     ',' then; both must be strings, and neither is skipped.
//   mmlu:DIR          multiple choice in MMLU's CSV layout (engine/jobs/datasets/mmlu.h),
//                     for mc_accuracy; it has no text to score.
//
// As text (perplexity), the documents are joined with "\n\n" (text: and wikitext:
// give the file exactly as it is).
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
#include <vector>

#include "common/status.h"

namespace gb::engine {

struct DatasetSpec {
  enum class Kind { kText, kJsonl, kWikitext, kPg19, kMmlu };
  Kind kind = Kind::kText;
  std::string file;                 // a file, or the directory of kPg19 and kMmlu
  std::string field;                // kJsonl: the first field
  std::vector<std::string> fields;  // kJsonl: every field (one or two)
};

// A document of a dataset: an article, a book, a jsonl line.
struct Document {
  std::string name;  // the article's title, the book's file name, "line N"
  std::string text;
};

// A prompt and its reference answer (jsonl:FILE:PROMPT,ANSWER).
struct PromptAnswer {
  std::string prompt;
  std::string answer;
  size_t line = 0;
};

// Takes a spec apart without reading anything (for validating grids early).
Result<DatasetSpec> parse_dataset_spec(const std::string& spec);

// Reads the dataset a spec names: its whole text. mmlu: and two-field jsonl specs
// are errors (they are no text).
Result<std::string> load_text_dataset(const std::string& spec);
Result<std::string> load_text_dataset(const DatasetSpec& spec);

// The documents of a text dataset (text:, wikitext:, pg19:, one-field jsonl:).
Result<std::vector<Document>> load_documents(const DatasetSpec& spec);

// The prompt/answer pairs of a two-field jsonl: spec, in file order.
Result<std::vector<PromptAnswer>> load_prompt_answers(const DatasetSpec& spec);

// The files a dataset reads, for its digest: the one file, or a directory's files
// (pg19: DIR/NAME.txt; mmlu: DIR/SPLIT/NAME.csv), sorted. Errors: a directory
// that is missing or holds none of them.
Result<std::vector<std::string>> dataset_files(const DatasetSpec& spec);

// Why a job of `job_kind` cannot read `spec`, or nullopt: ppl and kv_calibrate read
// text (text:, wikitext:, pg19:, one-field jsonl:), mc_accuracy an mmlu: directory, gen_accuracy a
// two-field jsonl:; other kinds take no dataset.
std::optional<std::string> dataset_kind_mismatch(std::string_view job_kind, const DatasetSpec& spec);

// Whether a line of raw wikitext is an article heading (" = Title = ").
bool is_wikitext_article_heading(std::string_view line);

// The byte offset of the first invalid UTF-8 sequence in `s`, or nullopt.
std::optional<size_t> first_invalid_utf8(std::string_view s);

}  // namespace gb::engine

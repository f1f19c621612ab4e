// MMLU's CSV layout (Hendrycks et al., the `data/` directory of the original
// harness): a directory with the splits dev/, val/ and test/, each holding
// SUBJECT_SPLIT.csv files (abstract_algebra_test.csv) of rows without a header:
// question, the four choices A to D, and the answer letter. A subject is every
// file of one name across the splits; a file without the _SPLIT suffix
// (SUBJECT.csv) is that subject too. Rows are read with the RFC 4180 reader
// (quoted newlines and doubled quotes); a row that is not six fields, or whose
// answer is not one of A, B, C, D, is an error "FILE:LINE: what".
// Not here: prompts and scoring (engine/measure/evals/).
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"

namespace gb::engine {

struct McQuestion {
  std::string question;
  std::array<std::string, 4> choices;
  int answer = 0;    // 0..3 for A..D
  std::string file;  // where it came from, for messages
  size_t line = 0;
};

struct McSubject {
  std::string name;            // "abstract_algebra"
  std::vector<McQuestion> dev;  // the k-shot examples
  std::vector<McQuestion> val;
  std::vector<McQuestion> test;
  const std::vector<McQuestion>& split(const std::string& s) const { return s == "dev" ? dev : s == "val" ? val : test; }
};

// The subjects of an MMLU directory, by name. Errors: no such directory, no
// split directory with a CSV file, a malformed file.
Result<std::vector<McSubject>> load_mmlu(const std::string& dir);

// The CSV files of an MMLU directory (split/file, sorted), what its digest covers;
// errors as load_mmlu's for the directory layout (the files are not parsed).
Result<std::vector<std::string>> mmlu_files(const std::string& dir);

// The subject as the original harness writes it in the prompt's first line:
// "abstract_algebra" -> " abstract algebra" (each '_'-separated word after a space).
std::string mmlu_subject_text(const std::string& subject);

}  // namespace gb::engine

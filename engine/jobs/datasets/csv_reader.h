// A small RFC 4180 CSV reader for the datasets that come as CSV (MMLU's
// SUBJECT_test.csv files). Fields are separated by ',' and records by LF or CRLF; a
// field in double quotes may hold commas, line breaks and doubled quotes ("" is
// one "). A leading UTF-8 byte order mark is dropped and empty lines are skipped
// (as Python's csv module does). Not here: other separators, headers, type
// conversion, or what the columns mean (engine/jobs/datasets/mmlu.h).
//
// Strict where a file is malformed: a quote inside an unquoted field, text after a
// closing quote, or a quoted field still open at the end of the file is an error
// "FILE:LINE: what" (LINE 1-based, where the record or the open quote started).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gb::engine {

struct CsvRecord {
  size_t line = 0;                  // 1-based line the record starts on
  std::vector<std::string> fields;  // at least one
};

// Parses `text`; `source` names it in errors (a file name).
Result<std::vector<CsvRecord>> parse_csv(std::string_view text, const std::string& source);

// Reads and parses a file (at most 1 GiB); errors name the file.
Result<std::vector<CsvRecord>> read_csv_file(const std::string& path);

}  // namespace gb::engine

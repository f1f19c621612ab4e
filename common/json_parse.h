// The one way gridbench parses JSON that comes from outside the program (grid
// files, config.json, JOB.json, RESULT.json, tokenizer.json, safetensors headers,
// rpc payloads): a size limit checked before parsing, nesting deeper than
// `max_depth` refused, numbers outside the range of a double refused (1e400 is an
// error, not infinity), optionally duplicate keys refused, and never an exception:
// every failure is an Error that reads "SOURCE: $.json.path: what was expected"
// (syntax errors: "SOURCE: line L column C: what"). It is not a validator of
// what the document means; callers check that.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gb {

inline constexpr size_t kMiB = size_t{1} << 20;

struct JsonLimits {
  size_t max_bytes = 16 * kMiB;  // a grid file, config.json, JOB.json
  int max_depth = 64;            // objects and arrays nested in each other
  bool refuse_duplicate_keys = false;
};

// Parses `text`, naming `source` in every error.
Result<nlohmann::json> parse_json(std::string_view text, const std::string& source, const JsonLimits& limits = {});
// The same, keeping object keys in file order.
Result<nlohmann::ordered_json> parse_ordered_json(std::string_view text, const std::string& source,
                                                  const JsonLimits& limits = {});

// Reads a whole file of at most `max_bytes` (checked before reading). Errors:
// "PATH: cannot read: REASON", "PATH: N bytes, more than the limit of M".
Result<std::string> read_limited_file(const std::string& path, size_t max_bytes);

// read_limited_file(path, limits.max_bytes) then parse_json(text, path, limits).
Result<nlohmann::json> read_json_file(const std::string& path, const JsonLimits& limits = {});

// "N bytes, more than the limit of 16 MiB" (the size error's text without the source).
std::string size_limit_message(size_t bytes, size_t max_bytes);

// JSON paths as error messages write them: json_path_key("$.axes", "model") is
// "$.axes.model" (keys that are not identifiers are written ["..."]), and
// json_path_index("$.measure", 2) is "$.measure[2]".
std::string json_path_key(const std::string& base, const std::string& key);
std::string json_path_index(const std::string& base, size_t index);

}  // namespace gb

// YAML grid files -> JSON. Plain scalars are typed as the YAML 1.2 core schema
// types them (null, true/false, integers in decimal, 0o octal or 0x hex, floats);
// quoted and block scalars are strings; `!!str`, `!!int`, `!!float`, `!!bool` and
// `!!null` tags are honoured. Mapping keys must be scalars and unique. Mappings
// keep their order (ordered_json), so axes expand in file order.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gb::coord {

// Parses YAML `text` (one document; an empty text gives null). Errors read
// "SOURCE: line L column C: what" for syntax errors and
// "SOURCE: $.json.path: what (line L column C)" for a duplicate key, a non-scalar
// key, an unknown tag or a value JSON cannot hold (.inf, .nan, an integer
// beyond 64 bits), one line each, all of them collected.
Result<nlohmann::ordered_json> yaml_to_json(const std::string& text, const std::string& source);

}  // namespace gb::coord

// Every job parameter a grid may name, with its type and domain: the grid
// validator (coordinator) and gridbench-job check the same rules.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace gb::engine {

using Json = nlohmann::json;

enum class ParamType { kString, kInteger, kNumber, kBool, kStringOrObject };

struct ParamSpec {
  std::string name;
  ParamType type;
  std::string help;
};

// Every parameter any job kind knows. A grid that names another one is invalid.
const std::vector<ParamSpec>& job_params();
const ParamSpec* find_param(std::string_view name);

// Checks one value of a known parameter: its type and its domain (a model preset
// or model reference that resolves, a known format name, batch_size >= 1, ...).
// Returns nullopt when fine, else "what was expected" without a location; the
// caller prefixes "FILE: $.json.path: ".
std::optional<std::string> check_param(std::string_view name, const Json& value);

}  // namespace gb::engine

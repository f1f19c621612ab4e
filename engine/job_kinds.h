// Job kinds and job parameters: the one registry that both the grid validator (in
// the coordinator) and the job runner (gridbench-job) consult. A job kind is a
// measurement (`roofline`, later `ppl`, `speed`, ...): which parameters it takes,
// whether it is theory-only, and the function that runs it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

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

// One measured number. A value-less metric carries text instead (e.g. "oom" for a
// context that does not fit, "none" for a knee that does not exist).
struct Metric {
  std::string name;
  std::optional<double> value;
  std::string unit;
  std::string text;
};

struct SeriesPoint {
  double x = 0;
  double y = 0;
};

struct Series {
  std::string name;
  std::string x_unit;
  std::string y_unit;
  std::vector<SeriesPoint> points;
};

struct JobOutput {
  std::vector<Metric> metrics;
  std::vector<Series> series;
  Json device = Json::object();  // the device the figures came from (theory: the spec used)
};

// Called by long jobs with a fraction in [0, 1] and a short message.
using ProgressFn = std::function<void(double fraction, const std::string& message)>;

// What a job needs of the machine that runs it, for placement: the coordinator
// leases a job only to a worker with a device of this kind ("any" matches every
// device) whose memory is at least memory_bytes.
struct Requirement {
  std::string device = "any";  // "any", "cpu" or "cuda"
  int64_t memory_bytes = 0;    // estimated peak device memory in bytes; 0: negligible
};

// The device kinds a requirement may name.
bool valid_requirement_device(std::string_view device);

struct JobKind {
  std::string name;
  std::string help;
  std::vector<std::string> required;  // parameters that must be present
  std::vector<std::string> optional;  // parameters it also accepts
  bool theory_only = false;           // no device class; repeats are pointless
  // Runs the job on validated parameters (only required/optional keys are passed).
  std::function<Result<JobOutput>(const Json& params, const ProgressFn& progress)> run;
  // What a job of this kind needs, from its validated parameters; empty: any device,
  // 0 bytes (theory-only kinds and `sleep`).
  std::function<Requirement(const Json& params)> requirement;
};

const std::vector<JobKind>& job_kinds();
const JobKind* find_job_kind(std::string_view name);

// Checks a whole job: the kind exists, every required parameter is present, and
// each present parameter passes check_param. Errors name the parameter.
Status check_job(std::string_view kind, const Json& params);

// The placement requirement of a job of `kind` with `params` (kind.requirement, or
// any device and 0 bytes when the kind has none).
Requirement job_requirement(const JobKind& kind, const Json& params);

// The parameters of `point` that `kind` takes (required + optional), others dropped.
Json project_params(const JobKind& kind, const Json& point);

}  // namespace gb::engine

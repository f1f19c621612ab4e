// Job kinds: the one registry that both the grid validator (in the coordinator)
// and the job runner (gridbench-job) consult. A job kind is a measurement
// (`roofline`, `ppl`, `speed`, ...): which parameters it takes, whether it is
// theory-only, and what it needs of the machine that runs it. How a kind runs is
// engine/measure/measures.h, which only gridbench-job (and the CLI) link: the
// coordinator validates and places jobs without the engine.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "engine/jobs/job_output.h"
#include "engine/jobs/job_params.h"

namespace gb::engine {

using Json = nlohmann::json;

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
  // What a job of this kind needs, from its validated parameters; empty: any device,
  // 0 bytes (theory-only kinds and `sleep`).
  std::function<Requirement(const Json& params)> requirement;
  // Every metric a job of this kind may report (some only with an optional
  // parameter, e.g. roofline's decode_latency_ms with `context`): report columns are
  // checked against it, and a job without results gets its outcome in these cells.
  std::vector<std::string> metrics;
  // Its figures are times: a job of it holds its device alone (the embedded runner
  // starts nothing beside it and starts it only when nothing else runs).
  bool timed = false;
  // It also reports metrics NAME:KEY for a listed NAME, one per key of its data
  // (mc_accuracy's per subject: acc_letter:astronomy); kind_reports accepts them.
  bool keyed_metrics = false;
};

const std::vector<JobKind>& job_kinds();
const JobKind* find_job_kind(std::string_view name);

// Whether a job of `kind` may report `metric` (JobKind::metrics, and NAME:KEY for a
// listed NAME where the kind has keyed_metrics).
bool kind_reports(const JobKind& kind, std::string_view metric);

// Checks a whole job: the kind exists, every required parameter is present, and
// each present parameter passes check_param. Errors name the parameter.
Status check_job(std::string_view kind, const Json& params);

// The placement requirement of a job of `kind` with `params` (kind.requirement, or
// any device and 0 bytes when the kind has none).
Requirement job_requirement(const JobKind& kind, const Json& params);

// The parameters of `point` that `kind` takes (required + optional), others dropped.
Json project_params(const JobKind& kind, const Json& point);

}  // namespace gb::engine

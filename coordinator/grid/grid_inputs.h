// The files a grid's jobs read (engine/jobs/job_inputs.h: the model, dataset and
// tokenizer values that name files). A grid file's relative paths mean its own
// folder, and a job's hash must follow the files' content, not where a checkout
// sits. So the CLI, which sees the files, resolves each such value once and writes
// what it found into the grid document's `inputs` object, keyed by the value as
// written:
//
//   "inputs": {"text:corpus.txt": {"value": "text:/home/me/grids/corpus.txt",
//                                  "digest": "9f86d081884c7d65"}}
//
// parse_grid then runs each job on the resolved value and hashes it with the value
// as written plus the digest: moving a checkout keeps every hash, a changed file
// changes it. The document travels with `inputs` to a coordinator, which sees no
// files. Values holding ${VAR} stay as written (literal in the hash) and are
// expanded where the job runs. Not here: whether a file's content is valid.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace gb::coord {

struct GridJob;

// For every file-naming value in `doc` (axes, fixed, include, a measure's own
// parameters) without ${VAR}: the
// value with its file resolved against `base_dir` (when relative) and its digest, as
// the `inputs` object above. Errors: every value whose file is missing or
// unreadable, one line each, "SOURCE: $.path: what".
Result<nlohmann::ordered_json> resolve_grid_inputs(const nlohmann::ordered_json& doc, const std::string& base_dir,
                                                   const std::string& source);

// Checks an `inputs` object's shape: (path, what) for each problem.
std::vector<std::pair<std::string, std::string>> check_grid_inputs(const nlohmann::ordered_json& inputs);

// Applies a checked `inputs` object to expanded jobs: file-naming values found there
// are replaced by their resolved value, and each such job's hash becomes
// content_hash of {"kind", "params" as written, "inputs": {PARAM: DIGEST}} (+
// "repeat"). Jobs that read no listed file keep their hash.
void apply_grid_inputs(const nlohmann::ordered_json& inputs, std::vector<GridJob>& jobs);

// The same for an object of parameter values (a report's filter or baseline): file-
// naming values found in `inputs` become their resolved value, so that they match the
// jobs'. Anything but an object is left alone.
void apply_grid_inputs(const nlohmann::ordered_json& inputs, nlohmann::json& values);

// What can be checked of a loaded grid's files before any job runs (the CLI and
// the embedded runner, which see the files; a coordinator does not): each model
// value parses as a reference and its config (hf: config.json, gguf: the header)
// parses; a bare preset is refused for kinds that run the engine (those taking a
// `model` that are not theory-only: `synthetic:NAME` is meant); dataset values are
// text:FILE or jsonl:FILE:FIELD; kinds that score text (those taking a `dataset`)
// have a tokenizer: the grid names one, or each hf: model directory has its
// tokenizer.json. A value with ${VAR} is checked as this environment expands it;
// where a variable is unset, a line naming it goes to `warnings` (when given) and
// the value is not checked (the machines that run its jobs may set it). `doc` carries the `inputs` that load_grid resolved. Errors: every
// problem, one line each, "SOURCE: $.path: what".
Status check_grid_files(const nlohmann::ordered_json& doc, const std::vector<std::string>& measures,
                        const std::string& source, std::vector<std::string>* warnings = nullptr);

}  // namespace gb::coord

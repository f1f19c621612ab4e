// The files gridbench-job reads and writes: JOB.json (what to run) and RESULT.json
// (what came of it). The worker daemon and the embedded runner write the first and
// read the second; the format is documented in docs/ARCHITECTURE.md.
//
// JOB.json:    {"kind": "roofline", "hash": "3f2a...", "repeat": 0, "params": {...}}
// RESULT.json: {"status": "succeeded"|"failed"|"oom"|"invalid", "error": "...",
//               "metrics": [{"name", "value"|null, "unit", "text"}],
//               "series": [{"name", "x_unit", "y_unit", "points": [[x, y], ...]}],
//               "device": {...}, "engine_version": "BUILD_ID", "wall_ms": 1.5}
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "engine/jobs/job_output.h"

namespace gb::worker {

using Json = nlohmann::json;

// Exit codes of gridbench-job (documented in README and docs/ARCHITECTURE.md).
enum ExitCode : int {
  kExitSucceeded = 0,  // RESULT.json has status succeeded
  kExitFailed = 1,     // the job ran and failed; RESULT.json has the error
  kExitUsage = 2,      // bad flags or an unreadable/invalid JOB.json; RESULT.json if --out was given
  kExitOom = 3,        // out of memory: an outcome, RESULT.json has status oom
  kExitIo = 4,         // RESULT.json could not be written
  kExitInvalid = 5,    // the job cannot run as given (invalid parameters, a missing file, an unset
                       // ${VAR}): RESULT.json has status invalid; retrying would not help
};

struct JobSpec {
  std::string kind;
  std::string hash;
  int repeat = 0;
  Json params = Json::object();
};

enum class JobStatus { kSucceeded, kFailed, kOom, kInvalid };
std::string_view job_status_name(JobStatus s);

struct JobResult {
  JobStatus status = JobStatus::kSucceeded;
  std::string error;
  engine::JobOutput output;
  std::string engine_version;
  double wall_ms = 0;
};

Json job_spec_to_json(const JobSpec& spec);
Result<JobSpec> job_spec_from_json(const Json& j, const std::string& where);
// What is wrong with a JOB.json's kind and parameters against the job-kind
// registry, one line per problem ("WHERE: $.params.batch_size: expected ..."),
// "" when nothing is: an unknown kind, a missing required parameter, an unknown
// parameter, a value of the wrong type or out of its domain.
std::string job_spec_problems(const JobSpec& spec, const std::string& where);

Json job_result_to_json(const JobResult& r);
Result<JobResult> job_result_from_json(const Json& j, const std::string& where);

Result<Json> read_json_file(const std::string& path);
// Writes via a temporary file and rename, so a reader never sees half a file.
Status write_json_file(const std::string& path, const Json& j);

// The engine build id every result records (runs.engine_version): version, `git
// describe --always --dirty` ("nogit" outside git), compiler and build type, taken
// at configure time (CMakeLists.txt), e.g. "0.1.0+4497d5d-dirty+GNU-12.2.0+RelWithDebInfo".
// A measured job's stored result is reused only under the same build id
// (coord::ReuseKey).
std::string engine_version();

}  // namespace gb::worker

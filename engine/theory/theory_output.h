// The theory-only job kinds as pure arithmetic: a kind's validated parameters ->
// its metrics, series and device record (engine/jobs/job_output.h), with no engine
// run, no file read and no measurement, so that the coordinator can compute them
// without linking the engine (tests/layout/link_check.sh). gridbench-job
// (engine/measure/roofline_job.cc), the embedded runner and the coordinator
// (coordinator/theory_batches.h) all compute them here. Not here: which kinds are
// theory-only (engine/jobs/job_kinds.cc), the roofline itself (roofline.h).
#pragma once

#include <string_view>

#include "common/status.h"
#include "engine/jobs/job_output.h"

namespace gb::engine {

// The `roofline` kind: reference 003's figures for the job's configuration.
Result<JobOutput> roofline_output(const Json& params);

// The output of a theory-only kind; an error naming the kind for any other.
Result<JobOutput> theory_output(std::string_view kind, const Json& params);

}  // namespace gb::engine

// Runs one job in this process: validates the spec against the job-kind registry,
// runs the kind, times it. gridbench-job wraps it as a child process so that a
// crash, a CUDA error or an OOM takes down only the child.
#pragma once

#include "worker/job_spec.h"

namespace gb::worker {

// Never fails: a failure is a JobResult with status failed and the error.
JobResult run_job(const JobSpec& spec, const engine::ProgressFn& progress);

int exit_code_for(const JobResult& r);

// Writes a succeeded job's files (engine::JobOutput::files) beside result_path
// and puts each one's absolute path in the text of its metric. An error leaves
// no half-written file under the final name.
Status write_output_files(JobResult& r, const std::string& result_path);

// The whole of gridbench-job: reads spec_path, runs, writes out_path (and the
// job's files beside it: write_output_files). Progress
// lines go to stderr as "progress FRACTION MESSAGE". An unreadable or invalid
// JOB.json (job_spec_problems) exits kExitUsage with RESULT.json saying why.
int run_job_files(const std::string& spec_path, const std::string& out_path);

}  // namespace gb::worker

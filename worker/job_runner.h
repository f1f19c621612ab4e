// Runs one job in this process: validates the spec against the job-kind registry,
// runs the kind, times it. gridbench-job wraps it as a child process so that a
// crash, a CUDA error or an OOM takes down only the child.
#pragma once

#include "worker/job_spec.h"

namespace gb::worker {

// Exit codes of gridbench-job (documented in README and docs/ARCHITECTURE.md).
enum ExitCode : int {
  kExitSucceeded = 0,  // RESULT.json has status succeeded
  kExitFailed = 1,     // the job ran and failed; RESULT.json has the error
  kExitUsage = 2,      // bad flags or an unreadable/invalid JOB.json; RESULT.json if --out was given
  kExitOom = 3,        // out of memory: an outcome, RESULT.json has status oom
  kExitIo = 4,         // RESULT.json could not be written
};

// Never fails: a failure is a JobResult with status failed and the error.
JobResult run_job(const JobSpec& spec, const engine::ProgressFn& progress);

int exit_code_for(const JobResult& r);

// The whole of gridbench-job: reads spec_path, runs, writes out_path. Progress
// lines go to stderr as "progress FRACTION MESSAGE".
int run_job_files(const std::string& spec_path, const std::string& out_path);

}  // namespace gb::worker

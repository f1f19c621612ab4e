// How each job kind runs: the measurements. engine/jobs/job_kinds.h says which kinds
// exist and what they take; this is the other half, linked only by gridbench-job
// and the CLI (the coordinator validates and places jobs without it). One file per
// kind:
//
//   roofline  reference 003's theory (no engine run)          roofline_job.cc
//   sleep     sleeps; for tests and checking a deployment      sleep_job.cc
//   ppl       perplexity over a text dataset                   ppl_job.cc
//   memory    weight and KV bytes, peak resident memory        memory_job.cc
//   speed     prefill time, time per output token, throughput  speed_job.cc
//   quant_error  a weight format's matmul error (004's 4.4)    quant_error_job.cc
//   decode_curve  every decode step's latency, its W/B fit and
//             the roofline at the measured bandwidth            decode_curve_job.cc
//   context_search  the longest context within a memory budget  context_search_job.cc
//             (counted by budget_backend.h), by bisection
//   mc_accuracy   multiple choice on MMLU CSV directories      evals/mc_accuracy_job.cc
//   gen_accuracy  exact match of greedy generations            evals/gen_accuracy_job.cc
//             (evals/: their prompts, scoring and answer matching)
//   kv_calibrate  int8-calib's key/value ranges over a dataset  kv_calibrate_job.cc
//
// Every figure of the engine kinds is measured on the machine that runs the job;
// the job's device record says which (backend "cpu", the CPU model, threads), so
// CPU figures are never mistaken for GPU ones.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/jobs/job_kinds.h"
#include "engine/jobs/job_output.h"

namespace gb::engine {

// Runs a job on validated parameters (only the kind's required/optional keys).
using MeasureFn = std::function<Result<JobOutput>(const Json& params, const ProgressFn& progress)>;

struct Measure {
  std::string kind;  // a name in job_kinds()
  MeasureFn run;
};

// Every kind's run function, in job_kinds() order.
const std::vector<Measure>& measures();
// The run function of a job kind; nullptr for a name no kind has.
const MeasureFn* find_measure(std::string_view kind);

Result<JobOutput> run_roofline_job(const Json& params, const ProgressFn& progress);
Result<JobOutput> run_sleep_job(const Json& params, const ProgressFn& progress);
Result<JobOutput> run_ppl_job(const Json& params, const ProgressFn& progress);
Result<JobOutput> run_memory_job(const Json& params, const ProgressFn& progress);
Result<JobOutput> run_speed_job(const Json& params, const ProgressFn& progress);
Result<JobOutput> run_quant_error_job(const Json& params, const ProgressFn& progress);
Result<JobOutput> run_decode_curve_job(const Json& params, const ProgressFn& progress);
Result<JobOutput> run_context_search_job(const Json& params, const ProgressFn& progress);
Result<JobOutput> run_mc_accuracy_job(const Json& params, const ProgressFn& progress);
Result<JobOutput> run_gen_accuracy_job(const Json& params, const ProgressFn& progress);
Result<JobOutput> run_kv_calibrate_job(const Json& params, const ProgressFn& progress);

}  // namespace gb::engine

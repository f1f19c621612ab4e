// What `gridbench slurm` writes and reads, without running anything: the sbatch
// script of a worker array (one gridbench-worker per array task), Slurm's time
// limits, and the squeue lines by which `slurm status` and `slurm cancel` find the
// arrays gridbench submitted. Running sbatch, squeue and scancel is cli/slurm.cc.
//
// The script's contract with Slurm:
//  - `--array=0-(N-1)`, one task per GPU (`--gres=gpu:1`, the worker on cuda:0, the
//    GPU Slurm gives the task through CUDA_VISIBLE_DEVICES) or N CPU workers;
//  - tagged: job name kSlurmJobName and a comment kSlurmCommentPrefix + ADDR;
//  - `--requeue`: a task requeued (node failure, preemption, `scontrol requeue`)
//    starts again under the same worker name; the leases its killed run held
//    expire and their jobs return to pending;
//  - `--signal=B:TERM@S`: S seconds before the time limit the batch shell, which
//    is the worker itself (exec), gets SIGTERM and drains (finishes and reports
//    its running jobs, takes no new ones, exits 0);
//  - every task its own worker name (HOST:DEVICE:slurm-JOB_TASK) and work dir,
//    so that tasks placed on one node never share either.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace gb::cli {

inline constexpr const char* kSlurmJobName = "gridbench-worker";
inline constexpr const char* kSlurmCommentPrefix = "gridbench-worker:coordinator=";
// squeue --format of the lines parse_squeue reads: array job id, task id, the
// job's id as Slurm shows it (12_3), state, time used, time limit, nodes (or the
// reason it pends), name, comment. The comment is last: it may hold '|'.
inline constexpr const char* kSqueueFormat = "%F|%K|%i|%T|%M|%l|%R|%j|%k";
// The default drain lead: SIGTERM this long before the time limit (or a quarter of
// the limit when that is shorter).
inline constexpr int kDefaultDrainBeforeS = 300;

struct SlurmWorkerArray {
  std::string coordinator;  // HOST:PORT as the compute nodes reach it
  int gpus = 0;             // > 0: one task per GPU
  int cpu_tasks = 0;        // > 0: this many CPU workers (gpus must be 0)
  int slots = 1;            // jobs each worker runs at once
  std::string partition;    // "" : the cluster's default
  std::string time_limit;   // Slurm's syntax (MM, HH:MM:SS, D-HH, ...); "": the partition's
  std::string account;
  int cpus_per_task = 0;    // 0: Slurm's default
  std::string mem;          // e.g. 16G; "": Slurm's default
  int drain_before_s = -1;  // -1: kDefaultDrainBeforeS, or a quarter of time_limit if shorter
  std::string worker_binary;  // gridbench-worker as the nodes see it (absolute)
  std::string log_dir;        // where each task's output goes (absolute)
  std::string token_file;     // passed to the workers (absolute; "" : none, or GRIDBENCH_TOKEN in the job's env)
  std::string tls_ca, tls_cert, tls_key;  // passed to the workers (absolute)
  std::vector<std::string> sbatch_args;   // more #SBATCH options, e.g. "--qos=high"
};

// The sbatch script, or a usage error that names the flag: neither or both of
// gpus/cpu_tasks, counts out of range, a time limit Slurm would not take, a drain
// lead not shorter than the time limit, a value with whitespace or a newline (it
// would break the #SBATCH line), a relative path.
Result<std::string> slurm_worker_script(const SlurmWorkerArray& a);

// A Slurm time limit in seconds: "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S";
// "UNLIMITED"/"INFINITE" (any case) is -1. Errors say what was expected.
Result<int64_t> parse_slurm_time(const std::string& text);

// The drain lead the script uses (see drain_before_s), in seconds.
Result<int> drain_lead_s(const SlurmWorkerArray& a);

// `s` as one bash word: single-quoted unless it is made only of safe characters.
std::string shell_quote(const std::string& s);

struct SlurmTask {
  std::string array_job_id;  // "12"
  std::string task_id;       // "3" ("N/A" for a job that is not an array task)
  std::string job_id;        // "12_3" as Slurm shows it
  std::string state;         // PENDING, RUNNING, COMPLETING, ...
  std::string time_used;
  std::string time_limit;
  std::string where;  // the node, or (Reason) while pending
  std::string name;
  std::string comment;
  // The coordinator the tag names, "" when the job carries no gridbench tag.
  std::string coordinator() const;
};

// The lines of `squeue --noheader --format=kSqueueFormat`. Errors name the line
// that does not have the fields.
Result<std::vector<SlurmTask>> parse_squeue(const std::string& text);

// The tasks of gridbench worker arrays (name and comment tag), of `coordinator`
// when it is not "".
std::vector<SlurmTask> gridbench_tasks(const std::vector<SlurmTask>& tasks, const std::string& coordinator);

}  // namespace gb::cli

// `gridbench slurm submit|status|cancel`: gridbench workers as Slurm job arrays.
// submit writes the script (cli/slurm_script.h) and gives it to sbatch; status and
// cancel find the arrays gridbench submitted (by their name and comment tag) with
// squeue and end them with scancel. Not here: the script's text and the squeue
// parsing (slurm_script.cc), any talk with the coordinator (remote.cc).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/slurm_script.h"

namespace gb::cli {

struct SlurmFlags {
  // submit
  SlurmWorkerArray array;
  std::string device;    // "cpu" or "cuda" (the default with --gpus)
  int tasks = 0;         // with --device cpu
  std::string log_dir;   // default: the current directory
  std::string worker_bin;  // default: gridbench-worker beside gridbench
  bool dry_run = false;
  // status / cancel
  std::string coordinator;  // only the arrays of this coordinator ("" : all of gridbench's)
  std::string format = "table";
  std::vector<std::string> job_ids;  // cancel: these arrays or tasks only
  bool drain = false;                // cancel: SIGTERM the workers (they drain) instead of ending the tasks

  CLI::App* submit = nullptr;
  CLI::App* status = nullptr;
  CLI::App* cancel = nullptr;
};

// Adds `slurm` and its three subcommands to `app`, their flags bound to `flags`.
CLI::App* add_slurm_command(CLI::App& app, SlurmFlags& flags);

// Runs the subcommand that was parsed. Exit codes as run_cli's: 2 for invalid
// flags (nothing submitted), 1 when sbatch/squeue/scancel are missing or fail.
int run_slurm_command(SlurmFlags& flags);

}  // namespace gb::cli

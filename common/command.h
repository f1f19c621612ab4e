// Short-lived commands run to completion: argv looked up on PATH, a text on stdin,
// stdout and stderr captured, a time limit. For the CLI's calls to other tools
// (sbatch, squeue, scancel). Not for jobs: those are subprocess.h's children, with
// output to files and a process group of their own.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "common/subprocess.h"

namespace gb {

struct CommandOutput {
  ExitInfo exit;
  std::string out;  // everything it wrote on stdout
  std::string err;  // and on stderr
};

// Runs argv (argv[0] found on PATH unless it contains a '/') with `input` as its
// stdin, and waits for it. A command that exits non-zero is not an error here: the
// caller reads `exit`. Errors: argv[0] not found or not executable, a pipe or spawn
// failure, or no exit within timeout_ms (the command is then killed with SIGKILL).
Result<CommandOutput> run_command(const std::vector<std::string>& argv, const std::string& input = "",
                                  int timeout_ms = 60000);

// The path of `name` on PATH ("" when absent); `name` itself when it contains a '/'.
std::string find_on_path(const std::string& name);

}  // namespace gb

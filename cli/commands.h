// The `gridbench` command: one function per subcommand over the libraries.
// gridbench_main.cc only calls run_cli; the tests call it too.
#pragma once

namespace gb::cli {

// Exit codes: 0 success; 1 a job failed or a runtime error; 2 invalid input (bad
// flags, an invalid grid: nothing was written); 130 interrupted.
int run_cli(int argc, char** argv);

}  // namespace gb::cli

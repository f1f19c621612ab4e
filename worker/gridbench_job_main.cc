// gridbench-job --spec JOB.json --out RESULT.json: runs one job (see
// worker/job_runner.h for the exit codes). Two flags only, parsed by hand so that
// this program builds with the engine alone (GRIDBENCH_ENGINE_ONLY).
#include <cstdio>
#include <cstring>
#include <string>

#include "worker/job_runner.h"

namespace {
constexpr const char* kUsage =
    "usage: gridbench-job --spec JOB.json --out RESULT.json\n"
    "Runs one gridbench job and writes its metrics.\n"
    "exit codes: 0 succeeded, 1 job failed, 2 usage or invalid JOB.json,\n"
    "            3 out of memory, 4 RESULT.json could not be written\n";
}

int main(int argc, char** argv) {
  std::string spec, out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--version") {
      std::printf("gridbench-job %s\n", gb::worker::engine_version().c_str());
      return 0;
    }
    if ((a == "--spec" || a == "--out") && i + 1 < argc) {
      (a == "--spec" ? spec : out) = argv[++i];
      continue;
    }
    std::fprintf(stderr, "gridbench-job: unexpected argument '%s'\n%s", a.c_str(), kUsage);
    return gb::worker::kExitUsage;
  }
  if (spec.empty() || out.empty()) {
    std::fprintf(stderr, "gridbench-job: --spec and --out are required\n%s", kUsage);
    return gb::worker::kExitUsage;
  }
  return gb::worker::run_job_files(spec, out);
}

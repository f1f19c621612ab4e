// Child processes for jobs: spawn with output to files, poll, terminate. Used by
// the embedded runner and the worker daemon to run gridbench-job, so that a crash
// in a job takes down only the child. POSIX only.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace gb {

struct ExitInfo {
  bool exited = false;  // normal exit (code valid)
  int code = 0;
  int signal = 0;       // killed by this signal when !exited
  std::string describe() const;  // "exit code 1" / "killed by signal 9 (Killed)"
};

// Starts argv[0] (a path) with stdin from /dev/null and stdout/stderr appended to
// the given files, in its own process group. The child is killed (SIGKILL) when the
// thread that started it dies, so a killed runner leaves no orphan jobs.
Result<pid_t> spawn_process(const std::vector<std::string>& argv, const std::string& stdout_path,
                            const std::string& stderr_path);
// Non-blocking: the exit of `pid` if it has ended (and reaps it), else nullopt.
std::optional<ExitInfo> poll_process(pid_t pid);
// Blocking wait.
ExitInfo wait_process(pid_t pid);
// SIGTERM to the child's process group, then SIGKILL after grace_ms; reaps it.
ExitInfo terminate_process(pid_t pid, int grace_ms);
// Whether a process with this pid exists on this host.
bool process_alive(pid_t pid);
// The last `max_bytes` of a file ("" if unreadable), cut to whole lines.
std::string tail_file(const std::string& path, size_t max_bytes);
// Directory of the running executable (/proc/self/exe).
std::string self_exe_dir();
std::string host_name();

}  // namespace gb

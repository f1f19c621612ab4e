#include "cli/slurm_script.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace gb::cli {

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::stringstream ss(s);
  while (std::getline(ss, item, sep)) out.push_back(item);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

// A value that goes on an #SBATCH line or into the script as one token.
Status check_plain(const std::string& flag, const std::string& value) {
  for (unsigned char c : value) {
    if (std::isspace(c) || c == '"' || c == '\'' || c == '\\' || c < 0x20) {
      return Error{flag + " '" + value + "': must not contain whitespace, quotes or backslashes"};
    }
  }
  return Status::Ok();
}

Status check_absolute(const std::string& flag, const std::string& path) {
  if (path.empty()) return Status::Ok();
  if (path.front() != '/') return Error{flag + " '" + path + "': expected an absolute path (the nodes resolve it)"};
  if (path.find('\n') != std::string::npos) return Error{flag + ": the path contains a newline"};
  return Status::Ok();
}

}  // namespace

Result<int64_t> parse_slurm_time(const std::string& text) {
  const std::string expected =
      "expected minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED";
  const std::string t = lower(text);
  if (t == "unlimited" || t == "infinite") return int64_t{-1};
  if (t.empty()) return Error{"time limit '': " + expected};
  int64_t days = 0;
  std::string rest = t;
  const bool has_days = t.find('-') != std::string::npos;
  if (has_days) {
    const auto dash = t.find('-');
    const std::string d = t.substr(0, dash);
    if (!all_digits(d)) return Error{"time limit '" + text + "': " + expected};
    days = std::stoll(d);
    rest = t.substr(dash + 1);
  }
  std::vector<std::string> parts = split(rest, ':');
  if (parts.empty() || parts.size() > 3) return Error{"time limit '" + text + "': " + expected};
  std::vector<int64_t> v;
  for (const std::string& p : parts) {
    if (!all_digits(p) || p.size() > 9) return Error{"time limit '" + text + "': " + expected};
    v.push_back(std::stoll(p));
  }
  int64_t seconds = 0;
  if (has_days) {
    // D-H, D-H:M, D-H:M:S
    seconds = v[0] * 3600 + (v.size() > 1 ? v[1] * 60 : 0) + (v.size() > 2 ? v[2] : 0);
  } else if (v.size() == 1) {
    seconds = v[0] * 60;  // minutes
  } else if (v.size() == 2) {
    seconds = v[0] * 60 + v[1];  // M:S
  } else {
    seconds = v[0] * 3600 + v[1] * 60 + v[2];  // H:M:S
  }
  seconds += days * 86400;
  if (seconds <= 0) return Error{"time limit '" + text + "': must be longer than 0"};
  return seconds;
}

std::string shell_quote(const std::string& s) {
  const bool safe = !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '/' || c == '.' || c == '_' || c == '-' || c == ':' || c == '=' ||
           c == ',' || c == '+' || c == '@' || c == '%';
  });
  if (safe) return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

Result<int> drain_lead_s(const SlurmWorkerArray& a) {
  int64_t limit = -1;
  if (!a.time_limit.empty()) {
    Result<int64_t> t = parse_slurm_time(a.time_limit);
    if (!t.ok()) return Error{"--time: " + t.message()};
    limit = *t;
  }
  if (a.drain_before_s < -1 || a.drain_before_s > 65535) {
    return Error{"--drain-before " + std::to_string(a.drain_before_s) + ": expected 0 to 65535 seconds"};
  }
  if (a.drain_before_s == -1) {
    int64_t lead = kDefaultDrainBeforeS;
    if (limit > 0) lead = std::min<int64_t>(lead, limit / 4);
    return static_cast<int>(lead);
  }
  if (limit > 0 && a.drain_before_s >= limit) {
    return Error{"--drain-before " + std::to_string(a.drain_before_s) + ": must be shorter than --time " +
                 a.time_limit + " (" + std::to_string(limit) + " s)"};
  }
  return a.drain_before_s;
}

Result<std::string> slurm_worker_script(const SlurmWorkerArray& a) {
  if (a.gpus > 0 && a.cpu_tasks > 0) return Error{"give --gpus N or --device cpu --tasks N, not both"};
  if (a.gpus <= 0 && a.cpu_tasks <= 0) {
    return Error{"give --gpus N (one worker per GPU) or --device cpu --tasks N (N CPU workers)"};
  }
  const bool gpu = a.gpus > 0;
  const int tasks = gpu ? a.gpus : a.cpu_tasks;
  if (tasks > 100000) return Error{std::string(gpu ? "--gpus " : "--tasks ") + std::to_string(tasks) + ": at most 100000"};
  if (a.slots < 1 || a.slots > 1024) return Error{"--slots " + std::to_string(a.slots) + ": expected 1 to 1024"};
  if (a.cpus_per_task < 0) return Error{"--cpus-per-task " + std::to_string(a.cpus_per_task) + ": expected >= 1"};
  if (a.coordinator.empty()) return Error{"--coordinator: give the coordinator's HOST:PORT as the nodes reach it"};
  GB_RETURN_IF_ERROR(check_plain("--coordinator", a.coordinator));
  GB_RETURN_IF_ERROR(check_plain("--partition", a.partition));
  GB_RETURN_IF_ERROR(check_plain("--time", a.time_limit));
  GB_RETURN_IF_ERROR(check_plain("--account", a.account));
  GB_RETURN_IF_ERROR(check_plain("--mem", a.mem));
  for (const std::string& arg : a.sbatch_args) {
    GB_RETURN_IF_ERROR(check_plain("--sbatch-arg", arg));
    if (arg.rfind("-", 0) != 0) return Error{"--sbatch-arg '" + arg + "': expected an sbatch option (-x or --name=value)"};
  }
  if (a.worker_binary.empty()) return Error{"the path of gridbench-worker is empty"};
  GB_RETURN_IF_ERROR(check_absolute("--worker-bin", a.worker_binary));
  GB_RETURN_IF_ERROR(check_absolute("--log-dir", a.log_dir));
  GB_RETURN_IF_ERROR(check_absolute("--token-file", a.token_file));
  GB_RETURN_IF_ERROR(check_absolute("--tls-ca", a.tls_ca));
  GB_RETURN_IF_ERROR(check_absolute("--tls-cert", a.tls_cert));
  GB_RETURN_IF_ERROR(check_absolute("--tls-key", a.tls_key));
  if (a.log_dir.empty()) return Error{"--log-dir is empty"};
  // #SBATCH lines are read by sbatch, not bash: the log path must be one plain token.
  GB_RETURN_IF_ERROR(check_plain("--log-dir", a.log_dir));
  if (a.tls_cert.empty() != a.tls_key.empty()) return Error{"--tls-cert and --tls-key go together"};
  if (!a.tls_cert.empty() && a.tls_ca.empty()) return Error{"--tls-cert needs --tls-ca"};
  Result<int> lead = drain_lead_s(a);
  if (!lead.ok()) return lead.error();
  const std::string device = gpu ? "cuda:0" : "cpu";

  std::ostringstream s;
  s << "#!/bin/bash\n";
  s << "# gridbench worker array, written by `gridbench slurm submit` (gridbench " << GRIDBENCH_VERSION << "):\n";
  s << "# " << tasks << (gpu ? " GPU" : " CPU") << " worker" << (tasks == 1 ? "" : "s") << " for the coordinator at "
    << a.coordinator << ".\n";
  s << "#SBATCH --job-name=" << kSlurmJobName << "\n";
  s << "#SBATCH --comment=" << kSlurmCommentPrefix << a.coordinator << "\n";
  s << "#SBATCH --array=0-" << (tasks - 1) << "\n";
  s << "#SBATCH --ntasks=1\n";
  if (gpu) s << "#SBATCH --gres=gpu:1\n";
  if (a.cpus_per_task > 0) s << "#SBATCH --cpus-per-task=" << a.cpus_per_task << "\n";
  if (!a.mem.empty()) s << "#SBATCH --mem=" << a.mem << "\n";
  if (!a.partition.empty()) s << "#SBATCH --partition=" << a.partition << "\n";
  if (!a.account.empty()) s << "#SBATCH --account=" << a.account << "\n";
  if (!a.time_limit.empty()) s << "#SBATCH --time=" << a.time_limit << "\n";
  s << "#SBATCH --requeue\n";
  if (*lead > 0) s << "#SBATCH --signal=B:TERM@" << *lead << "\n";
  s << "#SBATCH --output=" << a.log_dir << "/" << kSlurmJobName << "-%A_%a.out\n";
  s << "#SBATCH --open-mode=append\n";
  for (const std::string& arg : a.sbatch_args) s << "#SBATCH " << arg << "\n";
  s << "set -eu\n";
  s << "task=\"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n";
  s << "name=\"$(hostname -s):" << device << ":slurm-${task}\"\n";
  s << "work_dir=\"${TMPDIR:-/tmp}/gridbench-slurm-${task}\"\n";
  s << "echo \"gridbench slurm: task ${task} on $(hostname) (restart ${SLURM_RESTART_COUNT:-0}) as worker ${name}\"\n";
  s << "# exec: the worker is the batch shell, so --signal=B:TERM reaches it and it drains.\n";
  s << "exec " << shell_quote(a.worker_binary) << " --coordinator " << shell_quote(a.coordinator) << " --device "
    << device << " --slots " << a.slots << " \\\n";
  s << "  --name \"$name\" --work-dir \"$work_dir\"";
  if (!a.token_file.empty()) s << " --token-file " << shell_quote(a.token_file);
  if (!a.tls_ca.empty()) s << " --tls-ca " << shell_quote(a.tls_ca);
  if (!a.tls_cert.empty()) s << " --tls-cert " << shell_quote(a.tls_cert) << " --tls-key " << shell_quote(a.tls_key);
  s << "\n";
  return s.str();
}

std::string SlurmTask::coordinator() const {
  const std::string prefix = kSlurmCommentPrefix;
  if (comment.rfind(prefix, 0) != 0) return "";
  return comment.substr(prefix.size());
}

Result<std::vector<SlurmTask>> parse_squeue(const std::string& text) {
  std::vector<SlurmTask> out;
  std::stringstream lines(text);
  int n = 0;
  for (std::string line; std::getline(lines, line);) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::vector<std::string> f;
    size_t start = 0;
    for (int i = 0; i < 8; ++i) {
      const size_t bar = line.find('|', start);
      if (bar == std::string::npos) break;
      f.push_back(line.substr(start, bar - start));
      start = bar + 1;
    }
    if (f.size() != 8) {
      return Error{"squeue output line " + std::to_string(n) + ": expected 9 '|'-separated fields (" +
                   kSqueueFormat + "), got '" + line + "'"};
    }
    f.push_back(line.substr(start));  // the comment, '|' and all
    SlurmTask t{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]};
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<SlurmTask> gridbench_tasks(const std::vector<SlurmTask>& tasks, const std::string& coordinator) {
  std::vector<SlurmTask> out;
  for (const SlurmTask& t : tasks) {
    if (t.name != kSlurmJobName || t.coordinator().empty()) continue;
    if (!coordinator.empty() && t.coordinator() != coordinator) continue;
    out.push_back(t);
  }
  return out;
}

}  // namespace gb::cli

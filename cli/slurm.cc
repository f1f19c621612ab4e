#include "cli/slurm.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "cli/exit_status.h"
#include "common/command.h"
#include "common/subprocess.h"

namespace gb::cli {

namespace {

namespace fs = std::filesystem;

constexpr int kSlurmCommandTimeoutMs = 120000;

// `path` made absolute against the current directory ("" stays "").
std::string absolute(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  if (ec) return path;
  std::string out = p.lexically_normal().string();  // "/a/b/." normalizes to "/a/b/"
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

Status check_readable(const std::string& flag, const std::string& path) {
  if (path.empty()) return Status::Ok();
  if (::access(path.c_str(), R_OK) != 0) return Error{flag + " " + path + ": not a readable file"};
  return Status::Ok();
}

// Loopback coordinators are reachable only from the submitting host.
bool is_loopback_address(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address.rfind("localhost:", 0) == 0 || address.rfind("[::1]", 0) == 0;
}

// Runs a Slurm client command; its failure as an error that says what it printed.
Result<CommandOutput> slurm_command(const std::vector<std::string>& argv, const std::string& input = "") {
  if (find_on_path(argv[0]).empty()) {
    return Error{argv[0] + ": not found on PATH (is Slurm's client, Debian's slurm-client, installed here?)"};
  }
  Result<CommandOutput> r = run_command(argv, input, kSlurmCommandTimeoutMs);
  if (!r.ok()) return r.error();
  if (!r->exit.exited || r->exit.code != 0) {
    std::string err = r->err.empty() ? r->out : r->err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return Error{argv[0] + " failed (" + r->exit.describe() + ")" + (err.empty() ? "" : ": " + err)};
  }
  return r;
}

Result<std::vector<SlurmTask>> queued_tasks(const std::string& coordinator) {
  Result<CommandOutput> q = slurm_command({"squeue", "--me", "--array", "--noheader",
                                           std::string("--name=") + kSlurmJobName,
                                           std::string("--format=") + kSqueueFormat});
  if (!q.ok()) return q.error();
  Result<std::vector<SlurmTask>> tasks = parse_squeue(q->out);
  if (!tasks.ok()) return tasks.error();
  return gridbench_tasks(*tasks, coordinator);
}

int cmd_slurm_submit(SlurmFlags& f) {
  SlurmWorkerArray a = f.array;
  if (a.coordinator.empty()) {
    if (const char* env = std::getenv("GRIDBENCH_COORDINATOR"); env != nullptr) a.coordinator = env;
  }
  // --gpus N | --device cpu --tasks N
  if (f.device.empty()) f.device = a.gpus > 0 ? "cuda" : "";
  if (f.device == "cpu") {
    if (a.gpus > 0) return fail("--gpus is for GPU workers; --device cpu takes --tasks N", kExitInvalid);
    if (f.tasks <= 0) return fail("--device cpu needs --tasks N (the number of CPU workers)", kExitInvalid);
    a.cpu_tasks = f.tasks;
  } else if (f.device == "cuda") {
    if (a.gpus <= 0) return fail("--device cuda needs --gpus N (one worker per GPU)", kExitInvalid);
    if (f.tasks > 0) return fail("--tasks is for CPU workers: with --gpus N there is one task per GPU", kExitInvalid);
  } else if (!f.device.empty()) {
    return fail("--device '" + f.device + "': expected cpu or cuda", kExitInvalid);
  } else if (f.tasks > 0) {
    return fail("--tasks is for CPU workers: give --device cpu --tasks N, or --gpus N for GPU workers", kExitInvalid);
  }

  a.log_dir = absolute(f.log_dir.empty() ? "." : f.log_dir);
  a.worker_binary = absolute(f.worker_bin.empty() ? self_exe_dir() + "/gridbench-worker" : f.worker_bin);
  a.token_file = absolute(a.token_file);
  a.tls_ca = absolute(a.tls_ca);
  a.tls_cert = absolute(a.tls_cert);
  a.tls_key = absolute(a.tls_key);
  Result<std::string> script = slurm_worker_script(a);
  if (!script.ok()) return fail(script.message(), kExitInvalid);
  if (f.dry_run) {
    std::fwrite(script->data(), 1, script->size(), stdout);
    return kExitOk;
  }

  // What the nodes will need, checked here where it can be said clearly (on a
  // shared filesystem, what this host sees is what they see).
  for (const auto& [flag, path] : {std::pair<std::string, std::string>{"--token-file", a.token_file},
                                   {"--tls-ca", a.tls_ca},
                                   {"--tls-cert", a.tls_cert},
                                   {"--tls-key", a.tls_key}}) {
    if (Status st = check_readable(flag, path); !st.ok()) return fail(st.message(), kExitInvalid);
  }
  if (::access(a.worker_binary.c_str(), X_OK) != 0) {
    return fail(a.worker_binary + ": gridbench-worker is not executable here (give --worker-bin)", kExitInvalid);
  }
  std::error_code ec;
  fs::create_directories(a.log_dir, ec);
  if (ec) return fail("--log-dir " + a.log_dir + ": cannot create: " + ec.message());
  if (is_loopback_address(a.coordinator)) {
    std::fprintf(stderr,
                 "gridbench: warning: %s is a loopback address: only tasks placed on this host can reach the "
                 "coordinator\n",
                 a.coordinator.c_str());
  }

  Result<CommandOutput> r = slurm_command({"sbatch", "--parsable"}, *script);
  if (!r.ok()) return fail(r.message());
  // --parsable prints "JOBID" or "JOBID;CLUSTER".
  std::string id = r->out.substr(0, r->out.find_first_of(";\n"));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) {
    return fail("sbatch printed no job id: '" + r->out + "'");
  }
  const int tasks = a.gpus > 0 ? a.gpus : a.cpu_tasks;
  std::printf("%s\n", id.c_str());
  std::fprintf(stderr,
               "gridbench: Slurm array %s: %d %s worker%s for %s; logs %s/%s-%s_*.out; `gridbench slurm status` "
               "follows it\n",
               id.c_str(), tasks, a.gpus > 0 ? "GPU" : "CPU", tasks == 1 ? "" : "s", a.coordinator.c_str(),
               a.log_dir.c_str(), kSlurmJobName, id.c_str());
  return kExitOk;
}

int cmd_slurm_status(const SlurmFlags& f) {
  if (f.format != "table" && f.format != "json") return fail("--format '" + f.format + "': expected table or json", kExitInvalid);
  Result<std::vector<SlurmTask>> tasks = queued_tasks(f.coordinator);
  if (!tasks.ok()) return fail(tasks.message());
  if (f.format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const SlurmTask& t : *tasks) {
      out.push_back({{"job_id", t.job_id},
                     {"array_job_id", t.array_job_id},
                     {"task_id", t.task_id},
                     {"state", t.state},
                     {"time_used", t.time_used},
                     {"time_limit", t.time_limit},
                     {"where", t.where},
                     {"coordinator", t.coordinator()}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  if (tasks->empty()) {
    std::printf("no gridbench worker arrays queued%s\n",
                f.coordinator.empty() ? "" : (" for " + f.coordinator).c_str());
    return kExitOk;
  }
  std::printf("%-14s %-11s %-11s %-11s %-22s %s\n", "JOB", "STATE", "TIME", "LIMIT", "NODE/REASON", "COORDINATOR");
  for (const SlurmTask& t : *tasks) {
    std::printf("%-14s %-11s %-11s %-11s %-22s %s\n", t.job_id.c_str(), t.state.c_str(), t.time_used.c_str(),
                t.time_limit.c_str(), t.where.c_str(), t.coordinator().c_str());
  }
  return kExitOk;
}

int cmd_slurm_cancel(const SlurmFlags& f) {
  Result<std::vector<SlurmTask>> tasks = queued_tasks(f.coordinator);
  if (!tasks.ok()) return fail(tasks.message());
  std::vector<SlurmTask> chosen;
  std::set<std::string> whole_arrays;
  if (f.job_ids.empty()) {
    chosen = *tasks;
    for (const SlurmTask& t : chosen) whole_arrays.insert(t.array_job_id);
  } else {
    for (const std::string& id : f.job_ids) {
      bool found = false;
      for (const SlurmTask& t : *tasks) {
        if (t.array_job_id == id || t.job_id == id) {
          chosen.push_back(t);
          found = true;
        }
      }
      if (!found) {
        return fail(id + ": not a queued gridbench worker array (or task) of yours" +
                        (f.coordinator.empty() ? "" : " for " + f.coordinator) + "; see `gridbench slurm status`",
                    kExitInvalid);
      }
      if (id.find('_') == std::string::npos) whole_arrays.insert(id);
    }
  }
  if (chosen.empty()) {
    std::printf("no gridbench worker arrays queued%s: nothing to cancel\n",
                f.coordinator.empty() ? "" : (" for " + f.coordinator).c_str());
    return kExitOk;
  }
  if (f.drain) {
    std::vector<std::string> running{"scancel", "--batch", "--signal=TERM"}, pending{"scancel"};
    for (const SlurmTask& t : chosen) (t.state == "RUNNING" ? running : pending).push_back(t.job_id);
    if (running.size() > 3) {
      Result<CommandOutput> r = slurm_command(running);
      if (!r.ok()) return fail(r.message());
    }
    if (pending.size() > 1) {
      Result<CommandOutput> r = slurm_command(pending);
      if (!r.ok()) return fail(r.message());
    }
    std::printf("sent SIGTERM to %zu running worker(s) (each drains: finishes and reports its jobs, then exits); "
                "cancelled %zu task(s) not running\n",
                running.size() - 3, pending.size() - 1);
    return kExitOk;
  }
  std::vector<std::string> argv{"scancel"};
  std::set<std::string> named;
  for (const SlurmTask& t : chosen) {
    const std::string id = whole_arrays.count(t.array_job_id) ? t.array_job_id : t.job_id;
    if (named.insert(id).second) argv.push_back(id);
  }
  Result<CommandOutput> r = slurm_command(argv);
  if (!r.ok()) return fail(r.message());
  std::string ids;
  for (size_t i = 1; i < argv.size(); ++i) ids += (i > 1 ? " " : "") + argv[i];
  std::printf("cancelled %zu task(s): %s\n", chosen.size(), ids.c_str());
  return kExitOk;
}

}  // namespace

CLI::App* add_slurm_command(CLI::App& app, SlurmFlags& f) {
  auto* slurm = app.add_subcommand("slurm", "gridbench workers as Slurm job arrays: submit, status, cancel");
  slurm->require_subcommand(1);

  auto* submit = slurm->add_subcommand(
      "submit",
      "Submit an sbatch array of gridbench-worker tasks (one per GPU, or N CPU workers) and print its Slurm job id. "
      "Tasks are requeued after a node failure or preemption; each drains on SIGTERM --drain-before seconds "
      "before the time limit. The array is named gridbench-worker and tagged with the coordinator in its comment.");
  submit->add_option("--coordinator", f.array.coordinator,
                     "the coordinator's HOST:PORT as the compute nodes reach it (env GRIDBENCH_COORDINATOR)");
  submit->add_option("--gpus", f.array.gpus, "GPU workers: one task per GPU (--gres=gpu:1 each, worker on cuda:0)")
      ->check(CLI::Range(1, 100000));
  submit->add_option("--device", f.device, "cpu for CPU workers (with --tasks); cuda is the default with --gpus");
  submit->add_option("--tasks", f.tasks, "with --device cpu: the number of CPU workers")->check(CLI::Range(1, 100000));
  submit->add_option("--slots", f.array.slots, "jobs each worker runs at once")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  submit->add_option("--partition", f.array.partition, "Slurm partition (default: the cluster's)");
  submit->add_option("--time", f.array.time_limit,
                     "time limit of each task in Slurm's syntax: minutes, HH:MM:SS, D-HH:MM (default: the "
                     "partition's)");
  submit->add_option("--account", f.array.account, "Slurm account to charge");
  submit->add_option("--cpus-per-task", f.array.cpus_per_task, "CPUs of each task (default: Slurm's)")
      ->check(CLI::Range(1, 100000));
  submit->add_option("--mem", f.array.mem, "memory of each task, e.g. 32G (default: Slurm's)");
  submit->add_option("--drain-before", f.array.drain_before_s,
                     "seconds before the time limit at which each worker gets SIGTERM and drains (default 300, or a "
                     "quarter of --time when shorter; 0: none). Slurm may send it up to 60 s early")
      ->check(CLI::Range(0, 65535));
  submit->add_option("--log-dir", f.log_dir,
                     "directory of the tasks' output files gridbench-worker-JOB_TASK.out (default: the current "
                     "directory; created)");
  submit->add_option("--worker-bin", f.worker_bin,
                     "gridbench-worker as the nodes see it (default: the one beside this gridbench)");
  submit->add_option("--token-file", f.array.token_file,
                     "the coordinator's token file, passed to the workers (on a filesystem the nodes share; "
                     "else they read GRIDBENCH_TOKEN, which sbatch exports)");
  submit->add_option("--tls-ca", f.array.tls_ca, "CA certificate (PEM) the workers trust: they connect with TLS");
  submit->add_option("--tls-cert", f.array.tls_cert, "client certificate (PEM) of the workers");
  submit->add_option("--tls-key", f.array.tls_key, "client key (PEM) of the workers");
  submit->add_option("--sbatch-arg", f.array.sbatch_args,
                     "another sbatch option for the script, e.g. --sbatch-arg=--qos=high (repeatable)")
      ->allow_extra_args(false);
  submit->add_flag("--dry-run", f.dry_run, "print the sbatch script and submit nothing");
  f.submit = submit;

  auto* status = slurm->add_subcommand(
      "status", "Your queued and running gridbench worker array tasks (squeue), with the coordinator of each");
  status->add_option("--coordinator", f.coordinator, "only the arrays of this coordinator HOST:PORT");
  status->add_option("--format", f.format, "table|json")->capture_default_str();
  f.status = status;

  auto* cancel = slurm->add_subcommand(
      "cancel",
      "Cancel your gridbench worker arrays (scancel): all of them, those of --coordinator, or the given ids. The "
      "jobs their workers were running go back to pending (an attempt spent: reported failed, or their leases "
      "expire); with --drain the running workers finish and report their jobs first");
  cancel->add_option("job_ids", f.job_ids, "array job ids (12) or tasks (12_3); default: every gridbench array");
  cancel->add_option("--coordinator", f.coordinator, "only the arrays of this coordinator HOST:PORT");
  cancel->add_flag("--drain", f.drain,
                   "send SIGTERM to the running workers (scancel --batch --signal=TERM): each drains and exits; "
                   "tasks not yet running are cancelled");
  f.cancel = cancel;
  return slurm;
}

int run_slurm_command(SlurmFlags& f) {
  if (f.submit != nullptr && *f.submit) return cmd_slurm_submit(f);
  if (f.status != nullptr && *f.status) return cmd_slurm_status(f);
  if (f.cancel != nullptr && *f.cancel) return cmd_slurm_cancel(f);
  return kExitInvalid;
}

}  // namespace gb::cli

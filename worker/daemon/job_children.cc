// The worker's children, one gridbench-job process per leased run: its run directory
// (WORK_DIR/runs/HASH-runRUN_ID), starting it, polling it, killing it (on a timeout,
// a cancel, a lost lease, a stop), and reading back how it ended (RESULT.json, the
// tail of its stderr, its progress lines); also the orphans an earlier worker left
// running. Not here: the rpcs that renew its lease (worker_rpcs.cc) and the report
// of how it ended (report_queue.cc).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "worker/job_spec.h"

#include "common/json_parse.h"
#include "worker/daemon/worker_daemon_impl.h"

namespace gb::worker {

// ---- what a child prints and leaves behind ----

std::optional<Progress> parse_progress_line(std::string_view line) {
  constexpr std::string_view kPrefix = "progress ";
  if (line.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string rest(line.substr(kPrefix.size()));
  while (!rest.empty() && (rest.back() == '\r' || rest.back() == '\n')) rest.pop_back();
  const char* begin = rest.c_str();
  char* end = nullptr;
  double f = std::strtod(begin, &end);
  if (end == begin || (*end != '\0' && *end != ' ') || !(f == f)) return std::nullopt;
  Progress p;
  p.fraction = std::clamp(f, 0.0, 1.0);
  if (*end == ' ') p.message = std::string(end + 1);
  return p;
}

std::optional<Progress> StderrFollower::poll() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) return std::nullopt;
  in.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(in.tellg());
  if (size < offset_) offset_ = 0;  // truncated: start over
  if (size == offset_) return std::nullopt;
  const uint64_t n = std::min<uint64_t>(size - offset_, 1u << 20);
  std::string chunk(n, '\0');
  in.seekg(static_cast<std::streamoff>(offset_));
  in.read(chunk.data(), static_cast<std::streamsize>(n));
  chunk.resize(static_cast<size_t>(in.gcount()));
  offset_ += chunk.size();
  partial_ += chunk;
  std::optional<Progress> latest;
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (auto p = parse_progress_line(std::string_view(partial_).substr(start, nl - start))) latest = p;
  }
  partial_.erase(0, start);
  if (partial_.size() > (64u << 10)) partial_.clear();  // a runaway line: not progress
  return latest;
}

std::string stderr_tail(const std::string& path, size_t max_bytes) {
  std::string raw = tail_file(path, 64u << 10);
  std::string kept;
  std::istringstream lines(raw);
  for (std::string line; std::getline(lines, line);) {
    if (parse_progress_line(line)) continue;
    kept += line;
    kept += '\n';
  }
  while (!kept.empty() && kept.back() == '\n') kept.pop_back();
  if (kept.size() > max_bytes) {
    kept = kept.substr(kept.size() - max_bytes);
    auto nl = kept.find('\n');
    if (nl != std::string::npos && nl + 1 < kept.size()) kept = kept.substr(nl + 1);
  }
  return kept;
}

std::string_view outcome_name(Outcome::Kind k) {
  switch (k) {
    case Outcome::kSucceeded: return "succeeded";
    case Outcome::kFailed: return "failed";
    case Outcome::kOom: return "oom";
    case Outcome::kTimeout: return "timeout";
    case Outcome::kInvalid: return "invalid";
  }
  return "failed";
}

namespace {
std::string format_seconds(double s) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g", s);
  return buf;
}
std::string cap(std::string s, size_t n = 4000) {
  if (s.size() > n) s = "..." + s.substr(s.size() - n);
  return s;
}
}  // namespace

Outcome classify_outcome(const ExitInfo& exit, bool timed_out, double timeout_s, const Result<JobResult>& result,
                         const std::string& tail) {
  Outcome o;
  if (result.ok()) o.result = *result;
  const std::string result_error = result.ok() ? result->error : "";
  auto with_tail = [&](std::string e) {
    if (!tail.empty() && (result_error.empty() || tail.find(result_error) == std::string::npos)) e += "\n" + tail;
    return cap(e);
  };
  if (timed_out) {
    o.kind = Outcome::kTimeout;
    o.error = "timed out after " + format_seconds(timeout_s) + " s (gridbench-job " + exit.describe() + ")";
    return o;
  }
  if (exit.exited && exit.code == kExitSucceeded) {
    if (result.ok() && result->status == JobStatus::kSucceeded) {
      o.kind = Outcome::kSucceeded;
      return o;
    }
    o.kind = Outcome::kFailed;
    o.error = with_tail("gridbench-job exited 0 but " +
                        (result.ok() ? "RESULT.json says " + std::string(job_status_name(result->status))
                                     : result.message()));
    return o;
  }
  if (exit.exited && (exit.code == kExitInvalid || exit.code == kExitUsage)) {
    // Invalid as given (or an invalid JOB.json): the coordinator fails it without retries.
    o.kind = Outcome::kInvalid;
    o.error = !result_error.empty() ? cap(result_error) : (tail.empty() ? "invalid job" : cap(tail));
    return o;
  }
  if (exit.exited && exit.code == kExitOom) {
    o.kind = Outcome::kOom;
    o.error = !result_error.empty() ? cap(result_error) : (tail.empty() ? "out of memory" : cap(tail));
    return o;
  }
  o.kind = Outcome::kFailed;
  std::string e = "gridbench-job " + exit.describe();
  if (!result_error.empty()) e += ": " + result_error;
  o.error = with_tail(e);
  return o;
}

// ---- the children ----

// Children of an earlier worker process on this work dir (killed by SIGKILL) would
// go on running jobs whose leases expire: kill them.
void WorkerDaemon::Impl::kill_orphans() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(work_dir / "runs", ec)) {
    Result<std::string> text = read_text_file((entry.path() / "pid").string());
    if (!text.ok()) continue;
    const pid_t pid = static_cast<pid_t>(std::atol(text->c_str()));
    if (pid <= 0 || pid == getpid()) continue;
    Result<std::string> cmdline = read_text_file("/proc/" + std::to_string(pid) + "/cmdline");
    if (!cmdline.ok() || cmdline->find((entry.path() / "job.json").string()) == std::string::npos) continue;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    log("killed gridbench-job pid " + std::to_string(pid) + " left running by an earlier worker (" +
        entry.path().string() + ")");
  }
}

void WorkerDaemon::Impl::start_child(const pb::LeaseJobReply& r) {
  const pb::Job& job = r.job();
  const int64_t run_id = r.run_id();
  fs::path dir = work_dir / "runs" / (sanitize(job.hash()) + "-run" + std::to_string(run_id));
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  auto refuse = [&](const std::string& error) {
    log("run " + std::to_string(run_id) + " (" + job.hash() + ") cannot start: " + error);
    add_fail_report(run_id, job.hash(), Outcome::kFailed, error, dir);
  };
  if (ec) return refuse(dir.string() + ": cannot create: " + ec.message());
  JobSpec spec;
  spec.kind = job.kind();
  spec.hash = job.hash();
  spec.repeat = job.repeat();
  Result<Json> params = parse_json(job.params_json().empty() ? "{}" : job.params_json(), "params_json");
  if (!params) return refuse(params.message());
  spec.params = std::move(*params);
  const std::string spec_path = (dir / "job.json").string();
  if (Status st = write_json_file(spec_path, job_spec_to_json(spec)); !st.ok()) return refuse(st.message());
  Child ch;
  ch.run_id = run_id;
  ch.hash = job.hash();
  ch.kind = job.kind();
  ch.attempt = r.attempt();
  ch.timeout_s = r.timeout_s();
  ch.lease_ms = r.lease_ms() > 0 ? r.lease_ms() : lease_ms;
  ch.dir = dir;
  ch.result_path = (dir / "result.json").string();
  ch.stderr_path = (dir / "stderr.log").string();
  Result<pid_t> pid = spawn_process({job_binary, "--spec", spec_path, "--out", ch.result_path},
                                    (dir / "stdout.log").string(), ch.stderr_path);
  if (!pid.ok()) return refuse(pid.message());
  ch.pid = *pid;
  {
    std::ofstream(dir / "pid") << ch.pid << "\n";
  }
  ch.follower = StderrFollower(ch.stderr_path);
  ch.started = Clock::now();
  ch.next_renew = ch.started;  // tell the coordinator at once that it runs
  log("run " + std::to_string(run_id) + " started: " + job.kind() + " " + job.hash() + " " + job.params_json() +
      " (attempt " + std::to_string(r.attempt()) + ", pid " + std::to_string(ch.pid) +
      (ch.timeout_s > 0 ? ", timeout " + format_seconds(ch.timeout_s) + " s" : "") + ")");
  children.insert_or_assign(run_id, std::move(ch));
}

void WorkerDaemon::Impl::begin_kill(Child& ch, KillReason why) {
  if (ch.kill != KillReason::kNone) return;
  ch.kill = why;
  kill(-ch.pid, SIGTERM);
  kill(ch.pid, SIGTERM);
  ch.kill_deadline = Clock::now() + std::chrono::milliseconds(o.kill_grace_ms);
}

void WorkerDaemon::Impl::on_child_exit(Child& ch, const ExitInfo& exit) {
  const double secs = std::chrono::duration<double>(Clock::now() - ch.started).count();
  const std::string run = "run " + std::to_string(ch.run_id) + " (" + ch.hash + ")";
  std::error_code ec;
  if (ch.kill == KillReason::kCancelled || ch.kill == KillReason::kLeaseLost) {
    log(run + " stopped after " + format_seconds(secs) + " s (" + exit.describe() + "); nothing reported");
    fs::remove_all(ch.dir, ec);
    return;
  }
  Result<Json> doc = read_json_file(ch.result_path);
  Result<JobResult> result = doc.ok() ? job_result_from_json(*doc, ch.result_path) : Result<JobResult>(doc.error());
  Outcome out = classify_outcome(exit, ch.kill == KillReason::kTimeout, ch.timeout_s, result,
                                 stderr_tail(ch.stderr_path));
  if (out.kind == Outcome::kSucceeded) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.1f", out.result.wall_ms);
    log(run + " succeeded in " + buf + " ms");
    add_complete_report(ch, out.result);
  } else {
    log(run + " " + std::string(outcome_name(out.kind)) + " after " + format_seconds(secs) + " s: " + out.error);
    add_fail_report(ch.run_id, ch.hash, out.kind, out.error, ch.dir);
  }
}

void WorkerDaemon::Impl::tick_children() {
  for (auto it = children.begin(); it != children.end();) {
    Child& ch = it->second;
    const auto now = Clock::now();
    std::optional<ExitInfo> exit = poll_process(ch.pid);
    if (exit) {
      on_child_exit(ch, *exit);
      it = children.erase(it);
      continue;
    }
    if (ch.kill == KillReason::kNone && ch.timeout_s > 0 &&
        now - ch.started > std::chrono::duration<double>(ch.timeout_s)) {
      log("run " + std::to_string(ch.run_id) + " (" + ch.hash + ") exceeded its timeout of " +
          format_seconds(ch.timeout_s) + " s: stopping pid " + std::to_string(ch.pid));
      begin_kill(ch, KillReason::kTimeout);
    }
    if (ch.kill != KillReason::kNone) {
      if (!ch.sigkill_sent && now >= ch.kill_deadline) {
        kill(-ch.pid, SIGKILL);
        kill(ch.pid, SIGKILL);
        ch.sigkill_sent = true;
      }
    } else if (!ch.renew_in_flight && now >= ch.next_renew) {
      if (auto p = ch.follower.poll()) ch.progress = *p;  // the latest progress line
      send_renew(ch);
    }
    ++it;
  }
}

// Back after an absence: every running child's lease is renewed at once.
void WorkerDaemon::Impl::renew_leases_now() {
  for (auto& [id, ch] : children) ch.next_renew = Clock::now();
  if (held) held->next_renew = Clock::now();
}

// Stops every child at once (SIGTERM, SIGKILL after kill_grace_ms) and forgets it;
// with `report_failed`, each is queued as failed ("stopped by a second signal") so
// that its job is retried without waiting for lease expiry.
void WorkerDaemon::Impl::stop_children(bool report_failed) {
  if (!children.empty()) {
    log("stopping " + std::to_string(children.size()) + " running child" + (children.size() == 1 ? "" : "ren"));
  }
  for (auto& [id, ch] : children) {
    kill(-ch.pid, SIGTERM);
    kill(ch.pid, SIGTERM);
  }
  for (auto& [id, ch] : children) {
    ExitInfo e = terminate_process(ch.pid, o.kill_grace_ms);
    if (report_failed) {
      add_fail_report(ch.run_id, ch.hash, Outcome::kFailed,
                      "worker " + name + " stopped by a second signal (gridbench-job " + e.describe() + ")", ch.dir);
    }
  }
  children.clear();
}

}  // namespace gb::worker

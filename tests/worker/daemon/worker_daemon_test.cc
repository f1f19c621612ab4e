// Tests of the worker daemon: its helpers (progress lines, outcome classification,
// backoff, device discovery) and the daemon itself, run in this process against a
// fake coordinator (an in-process gRPC server whose replies each test scripts), with
// real child processes (gridbench-job, or a shell script standing in for it to crash,
// run out of memory, fail or hang).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "proto/gridbench.grpc.pb.h"
#include "worker/job_runner.h"
#include "worker/daemon/worker_daemon.h"

namespace gb::worker {
namespace {
namespace fs = std::filesystem;
namespace pb = gridbench::v1;
using Clock = std::chrono::steady_clock;

const std::string kJob = std::string(GB_BINARY_DIR) + "/bin/gridbench-job";

std::string temp_dir() {
  auto dir = fs::path(::testing::TempDir()) /
             ("worker_daemon_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
              std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// ---- helpers ----

TEST(ProgressLine, Parses) {
  auto p = parse_progress_line("progress 0.2500 decode 512/1024");
  ASSERT_TRUE(p.has_value());
  EXPECT_DOUBLE_EQ(p->fraction, 0.25);
  EXPECT_EQ(p->message, "decode 512/1024");
  p = parse_progress_line("progress 1");
  ASSERT_TRUE(p.has_value());
  EXPECT_DOUBLE_EQ(p->fraction, 1.0);
  EXPECT_EQ(p->message, "");
  EXPECT_DOUBLE_EQ(parse_progress_line("progress 7 over")->fraction, 1.0);
  EXPECT_DOUBLE_EQ(parse_progress_line("progress -1 under")->fraction, 0.0);
  EXPECT_FALSE(parse_progress_line("gridbench-job: boom").has_value());
  EXPECT_FALSE(parse_progress_line("progress").has_value());
  EXPECT_FALSE(parse_progress_line("progress abc").has_value());
  EXPECT_FALSE(parse_progress_line("progress 0.5x").has_value());
  EXPECT_FALSE(parse_progress_line("progress nan").has_value());
}

TEST(StderrFollower, ReadsOnlyWholeNewLines) {
  std::string dir = temp_dir();
  std::string path = dir + "/stderr.log";
  StderrFollower f(path);
  EXPECT_FALSE(f.poll().has_value());  // no file yet
  std::ofstream out(path);
  out << "progress 0.1 one\nnoise\nprogress 0.2 t" << std::flush;
  auto p = f.poll();
  ASSERT_TRUE(p.has_value());
  EXPECT_DOUBLE_EQ(p->fraction, 0.1);
  EXPECT_FALSE(f.poll().has_value());  // nothing new
  out << "wo\n" << std::flush;
  p = f.poll();
  ASSERT_TRUE(p.has_value());
  EXPECT_DOUBLE_EQ(p->fraction, 0.2);
  EXPECT_EQ(p->message, "two");
  fs::remove_all(dir);
}

TEST(StderrTail, LeavesOutProgressLines) {
  std::string dir = temp_dir();
  write_file(dir + "/e", "progress 0.1 a\nfirst\nprogress 0.2 b\nsecond\n");
  EXPECT_EQ(stderr_tail(dir + "/e"), "first\nsecond");
  std::string many;
  for (int i = 0; i < 1000; ++i) many += "line " + std::to_string(i) + "\n";
  write_file(dir + "/m", many);
  std::string tail = stderr_tail(dir + "/m", 100);
  EXPECT_LE(tail.size(), 100u);
  EXPECT_EQ(tail.substr(tail.size() - 8), "line 999");
  EXPECT_EQ(tail.rfind("line ", 0), 0u);  // whole lines only
  EXPECT_EQ(stderr_tail(dir + "/missing"), "");
  fs::remove_all(dir);
}

JobResult result_with(JobStatus status, const std::string& error) {
  JobResult r;
  r.status = status;
  r.error = error;
  r.wall_ms = 3;
  return r;
}

TEST(ClassifyOutcome, EveryCase) {
  ExitInfo ok{true, 0, 0};
  Outcome o = classify_outcome(ok, false, 0, result_with(JobStatus::kSucceeded, ""), "");
  EXPECT_EQ(o.kind, Outcome::kSucceeded);
  EXPECT_DOUBLE_EQ(o.result.wall_ms, 3);

  // Exit 0 without a readable RESULT.json is a failure.
  o = classify_outcome(ok, false, 0, Result<JobResult>(Error{"result.json: cannot read"}), "");
  EXPECT_EQ(o.kind, Outcome::kFailed);
  EXPECT_NE(o.error.find("cannot read"), std::string::npos);

  // Exit 1: RESULT.json's error, the stderr tail only when it adds something.
  o = classify_outcome(ExitInfo{true, 1, 0}, false, 0, result_with(JobStatus::kFailed, "bad model"),
                       "gridbench-job: bad model");
  EXPECT_EQ(o.kind, Outcome::kFailed);
  EXPECT_EQ(o.error, "gridbench-job exit code 1: bad model");
  o = classify_outcome(ExitInfo{true, 1, 0}, false, 0, result_with(JobStatus::kFailed, "bad model"), "other\ntrace");
  EXPECT_EQ(o.error, "gridbench-job exit code 1: bad model\nother\ntrace");

  // Exit 3: oom, an outcome.
  o = classify_outcome(ExitInfo{true, 3, 0}, false, 0, result_with(JobStatus::kOom, "needs 90 GiB"), "");
  EXPECT_EQ(o.kind, Outcome::kOom);
  EXPECT_EQ(o.error, "needs 90 GiB");
  o = classify_outcome(ExitInfo{true, 3, 0}, false, 0, Result<JobResult>(Error{"x"}), "CUDA out of memory");
  EXPECT_EQ(o.kind, Outcome::kOom);
  EXPECT_EQ(o.error, "CUDA out of memory");

  // A crash: failed with the signal and the stderr tail.
  o = classify_outcome(ExitInfo{false, 0, SIGSEGV}, false, 0, Result<JobResult>(Error{"x"}), "last words");
  EXPECT_EQ(o.kind, Outcome::kFailed);
  EXPECT_NE(o.error.find("signal 11"), std::string::npos);
  EXPECT_NE(o.error.find("last words"), std::string::npos);

  // Killed on its timeout.
  o = classify_outcome(ExitInfo{false, 0, SIGTERM}, true, 2.5, Result<JobResult>(Error{"x"}), "");
  EXPECT_EQ(o.kind, Outcome::kTimeout);
  EXPECT_NE(o.error.find("timed out after 2.5 s"), std::string::npos);
}

TEST(Backoff, DoublesToTheCapWithJitter) {
  Backoff b(100, 5000, 42);
  double base = 100;
  for (int i = 0; i < 12; ++i) {
    int d = b.next_ms();
    EXPECT_GE(d, static_cast<int>(0.8 * base) - 1) << i;
    EXPECT_LE(d, std::min(5000, static_cast<int>(1.2 * base) + 1)) << i;
    base = std::min(5000.0, base * 2);
  }
  EXPECT_EQ(b.attempts(), 12);
  b.reset();
  EXPECT_LE(b.next_ms(), 120);
  // Seeded: the same sequence.
  Backoff x(100, 5000, 7), y(100, 5000, 7);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(x.next_ms(), y.next_ms());
}

TEST(DiscoverDevice, CpuAndErrors) {
  Result<DeviceReport> cpu = discover_device("cpu", true);
  ASSERT_TRUE(cpu.ok()) << cpu.message();
  EXPECT_EQ(cpu->kind, "cpu");
  EXPECT_FALSE(cpu->name.empty());
  EXPECT_GT(cpu->memory_bytes, 0);
  EXPECT_GT(cpu->copy_bandwidth_bytes_per_s, 0);
  EXPECT_EQ(cpu->to_json()["kind"], "cpu");

  Result<DeviceReport> bad = discover_device("gpu0", false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("cpu\" or \"cuda:N"), std::string::npos);
  Result<DeviceReport> missing = discover_device("cuda:97", false);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("cuda:97"), std::string::npos) << missing.message();
}

// ---- the daemon against a fake coordinator ----

class FakeCoordinator final : public pb::Coordinator::Service {
 public:
  std::mutex mu;
  std::condition_variable cv;
  std::string token;                       // required when not empty
  int64_t lease_ms = 600;
  std::deque<pb::LeaseJobReply> queue;     // jobs to hand out
  std::map<int64_t, std::string> renew_mode;  // run id -> "cancel" | "lost" (else ok)
  int complete_unavailable = 0;            // fail this many CompleteJobs with UNAVAILABLE first
  bool complete_jobs_rpc = false;          // implements CompleteJobs (else UNIMPLEMENTED, as an older one)
  bool hold_completions = false;           // CompleteJob(s): UNAVAILABLE while set
  std::vector<int> batch_sizes;            // completions per CompleteJobs call, held ones too
  int unimplemented_calls = 0;
  int registers = 0, drains = 0, leases_handed = 0;
  std::vector<pb::RenewLeaseRequest> renews;
  std::vector<pb::CompleteJobRequest> completes;
  std::vector<pb::FailJobRequest> fails;

  grpc::Status auth(grpc::ServerContext* ctx) {
    if (token.empty()) return grpc::Status::OK;
    auto it = ctx->client_metadata().find("authorization");
    if (it == ctx->client_metadata().end() || std::string(it->second.data(), it->second.size()) != "Bearer " + token)
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
    return grpc::Status::OK;
  }

  grpc::Status RegisterWorker(grpc::ServerContext* ctx, const pb::RegisterWorkerRequest* req,
                              pb::RegisterWorkerReply* reply) override {
    if (auto st = auth(ctx); !st.ok()) return st;
    std::lock_guard lock(mu);
    ++registers;
    EXPECT_EQ(req->devices_size(), 1);
    reply->set_worker_id(7);
    reply->set_lease_ms(lease_ms);
    cv.notify_all();
    return grpc::Status::OK;
  }
  grpc::Status LeaseJob(grpc::ServerContext* ctx, const pb::LeaseJobRequest* req, pb::LeaseJobReply* reply) override {
    if (auto st = auth(ctx); !st.ok()) return st;
    std::unique_lock lock(mu);
    EXPECT_EQ(req->worker_id(), 7);
    cv.wait_for(lock, std::chrono::milliseconds(std::min(req->wait_ms(), 200)), [&] { return !queue.empty(); });
    if (queue.empty()) return grpc::Status::OK;
    *reply = queue.front();
    queue.pop_front();
    ++leases_handed;
    return grpc::Status::OK;
  }
  grpc::Status RenewLease(grpc::ServerContext* ctx, const pb::RenewLeaseRequest* req,
                          pb::RenewLeaseReply* reply) override {
    if (auto st = auth(ctx); !st.ok()) return st;
    std::lock_guard lock(mu);
    renews.push_back(*req);
    cv.notify_all();
    const std::string mode = renew_mode.count(req->run_id()) ? renew_mode[req->run_id()] : "";
    if (mode == "lost") return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "not your lease");
    reply->set_cancelled(mode == "cancel");
    return grpc::Status::OK;
  }
  grpc::Status CompleteJob(grpc::ServerContext* ctx, const pb::CompleteJobRequest* req,
                           pb::CompleteJobReply*) override {
    if (auto st = auth(ctx); !st.ok()) return st;
    std::lock_guard lock(mu);
    if (hold_completions) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "held");
    if (complete_unavailable > 0) {
      --complete_unavailable;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "try later");
    }
    completes.push_back(*req);
    cv.notify_all();
    return grpc::Status::OK;
  }
  grpc::Status CompleteJobs(grpc::ServerContext* ctx, const pb::CompleteJobsRequest* req,
                            pb::CompleteJobsReply* reply) override {
    if (auto st = auth(ctx); !st.ok()) return st;
    std::lock_guard lock(mu);
    if (!complete_jobs_rpc) {
      ++unimplemented_calls;
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no CompleteJobs");
    }
    batch_sizes.push_back(req->completions_size());
    cv.notify_all();
    if (hold_completions) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "held");
    EXPECT_EQ(req->worker_name(), "test-worker");
    for (const auto& c : req->completions()) {
      completes.push_back(c);
      pb::CompleteJobResult* r = reply->add_results();
      r->set_run_id(c.run_id());
    }
    return grpc::Status::OK;
  }
  grpc::Status FailJob(grpc::ServerContext* ctx, const pb::FailJobRequest* req, pb::FailJobReply* reply) override {
    if (auto st = auth(ctx); !st.ok()) return st;
    std::lock_guard lock(mu);
    fails.push_back(*req);
    reply->set_job_state("pending");
    cv.notify_all();
    return grpc::Status::OK;
  }
  grpc::Status Drain(grpc::ServerContext* ctx, const pb::DrainRequest*, pb::DrainReply*) override {
    if (auto st = auth(ctx); !st.ok()) return st;
    std::lock_guard lock(mu);
    ++drains;
    cv.notify_all();
    return grpc::Status::OK;
  }

  // Waits (up to `ms`) until pred() holds, under the lock.
  template <class Pred>
  bool wait(int ms, Pred pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::milliseconds(ms), pred);
  }
};

pb::LeaseJobReply lease(int64_t run_id, const std::string& params_json, double timeout_s = 0, int64_t lease_ms = 600) {
  pb::LeaseJobReply r;
  r.set_run_id(run_id);
  pb::Job* j = r.mutable_job();
  j->set_job_id(run_id);
  char hash[17];
  std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(run_id));
  j->set_hash(hash);
  j->set_kind("sleep");
  j->set_params_json(params_json);
  j->set_state("leased");
  r.set_attempt(1);
  r.set_lease_ms(lease_ms);
  r.set_timeout_s(timeout_s);
  return r;
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = temp_dir();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake);
    server = builder.BuildAndStart();
    ASSERT_TRUE(server != nullptr);
    ASSERT_GT(port, 0);
  }
  void TearDown() override {
    signals = 2;
    if (thread.joinable()) thread.join();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    std::error_code ec;
    if (!HasFailure()) fs::remove_all(dir, ec);
  }
  WorkerOptions options() {
    WorkerOptions o;
    o.coordinator = "127.0.0.1:" + std::to_string(port);
    o.name = "test-worker";
    o.slots = 2;
    o.work_dir = dir + "/work";
    o.job_binary = kJob;
    o.measure = false;
    o.seed = 1;
    o.kill_grace_ms = 500;
    o.lease_wait_ms = 500;
    return o;
  }
  void start(WorkerOptions o) {
    thread = std::thread([this, o] {
      WorkerDaemon d(o);
      exit_code = d.run(signals);
      exited = true;
    });
  }
  bool wait_exit(int ms) {
    auto end = Clock::now() + std::chrono::milliseconds(ms);
    while (!exited && Clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return exited;
  }
  // The pid file of a run's child (written right after it is spawned).
  pid_t child_pid(int64_t run_id) {
    for (int i = 0; i < 300; ++i) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(dir + "/work/runs", ec)) {
        if (e.path().filename().string().ends_with("-run" + std::to_string(run_id))) {
          std::ifstream in(e.path() / "pid");
          pid_t pid = 0;
          if (in >> pid && pid > 0) return pid;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
  }
  // Whether `pid` is still a live (not zombie) process.
  static bool alive(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(in, stat)) return false;
    auto close = stat.rfind(')');
    return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
  }

  std::string dir;
  FakeCoordinator fake;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::atomic<int> signals{0};
  std::thread thread;
  std::atomic<int> exit_code{-1};
  std::atomic<bool> exited{false};
};

TEST_F(DaemonTest, RunsAJobRenewsWithProgressCompletesAndDrains) {
  fake.lease_ms = 300;  // renew every 100 ms
  fake.queue.push_back(lease(1, R"({"seconds": 0.6})", 0, 300));
  start(options());
  ASSERT_TRUE(fake.wait(10000, [&] { return !fake.completes.empty(); }));
  {
    std::lock_guard lock(fake.mu);
    const pb::CompleteJobRequest& c = fake.completes[0];
    EXPECT_EQ(c.run_id(), 1);
    EXPECT_EQ(c.worker_name(), "test-worker");
    EXPECT_EQ(c.worker_id(), 7);
    ASSERT_EQ(c.metrics_size(), 1);
    EXPECT_EQ(c.metrics(0).name(), "slept_s");
    EXPECT_GE(c.metrics(0).value(), 0.6);
    EXPECT_GE(c.wall_ms(), 600);
    EXPECT_FALSE(c.engine_version().empty());
    EXPECT_NE(c.device_json().find("\"cpu\""), std::string::npos) << c.device_json();  // the worker's device
    // Renewed while it ran, with the child's progress.
    EXPECT_GE(fake.renews.size(), 3u);
    double best = 0;
    for (const auto& r : fake.renews) {
      EXPECT_EQ(r.run_id(), 1);
      EXPECT_TRUE(r.running());
      best = std::max(best, r.progress());
    }
    EXPECT_GT(best, 0.0);
    EXPECT_TRUE(fake.fails.empty());
  }
  // The succeeded run's directory is removed once the coordinator accepted it.
  auto end = Clock::now() + std::chrono::seconds(2);
  while (fs::exists(dir + "/work/runs/0000000000000001-run1") && Clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(fs::exists(dir + "/work/runs/0000000000000001-run1"));
  signals = 1;
  ASSERT_TRUE(wait_exit(5000));
  EXPECT_EQ(exit_code, kWorkerDrained);
  EXPECT_EQ(fake.drains, 1);
}

TEST_F(DaemonTest, ClassifiesCrashOomFailureAndTimeout) {
  // A stand-in for gridbench-job that misbehaves as its JOB.json says.
  const std::string script = dir + "/fake-job.sh";
  write_file(script, R"(#!/bin/sh
spec="$2"; out="$4"
if grep -q crash "$spec"; then echo "about to crash" >&2; kill -SEGV $$; fi
if grep -q oom "$spec"; then
  echo "progress 0.5 loading" >&2
  echo '{"status": "oom", "error": "needs 90 GiB", "metrics": [], "series": [], "device": {}, "engine_version": "0.1.0", "wall_ms": 1}' > "$out"
  exit 3
fi
if grep -q hang "$spec"; then exec sleep 30; fi
echo "something broke" >&2
exit 1
)");
  chmod(script.c_str(), 0755);
  fake.queue.push_back(lease(1, R"({"mode": "crash"})"));
  fake.queue.push_back(lease(2, R"({"mode": "oom"})"));
  fake.queue.push_back(lease(3, R"({"mode": "hang"})", 0.5));
  fake.queue.push_back(lease(4, R"({"mode": "fail"})"));
  WorkerOptions o = options();
  o.job_binary = script;
  start(o);
  ASSERT_TRUE(fake.wait(15000, [&] { return fake.fails.size() == 4; }));
  std::lock_guard lock(fake.mu);
  std::map<int64_t, pb::FailJobRequest> by_run;
  for (const auto& f : fake.fails) by_run[f.run_id()] = f;
  EXPECT_EQ(by_run[1].outcome(), "failed");
  EXPECT_NE(by_run[1].error().find("signal 11"), std::string::npos) << by_run[1].error();
  EXPECT_NE(by_run[1].error().find("about to crash"), std::string::npos) << by_run[1].error();
  EXPECT_EQ(by_run[2].outcome(), "oom");
  EXPECT_EQ(by_run[2].error(), "needs 90 GiB");
  EXPECT_EQ(by_run[3].outcome(), "timeout");
  EXPECT_NE(by_run[3].error().find("timed out after 0.5 s"), std::string::npos) << by_run[3].error();
  EXPECT_EQ(by_run[4].outcome(), "failed");
  EXPECT_NE(by_run[4].error().find("exit code 1"), std::string::npos);
  EXPECT_NE(by_run[4].error().find("something broke"), std::string::npos);
  EXPECT_TRUE(fake.completes.empty());
  // Failed runs keep their directory for inspection.
  EXPECT_TRUE(fs::exists(dir + "/work/runs/0000000000000004-run4/stderr.log"));
}

// A timed kind (speed) holds the device alone on a worker with several slots: leased
// while an untimed job runs, it waits unstarted (its lease renewed, running false)
// until that one has finished; nothing is leased while it waits or runs; untimed
// jobs share the slots. A stand-in job binary logs when each run starts and ends.
TEST_F(DaemonTest, TimedJobRunsAloneUntimedJobsShare) {
  const std::string script = dir + "/timed-job.sh";
  const std::string log = dir + "/intervals.log";
  write_file(script, R"SH(#!/bin/sh
spec="$2"; out="$4"
run=$(basename "$(dirname "$spec")")
echo "start $run $(date +%s%N)" >> )SH" + log + R"SH(
sleep 0.4
echo "end $run $(date +%s%N)" >> )SH" + log + R"SH(
echo '{"status": "succeeded", "error": "", "metrics": [], "series": [], "device": {}, "engine_version": "0.1.0", "wall_ms": 400}' > "$out"
)SH");
  chmod(script.c_str(), 0755);
  auto with_kind = [](pb::LeaseJobReply r, const std::string& kind) {
    r.mutable_job()->set_kind(kind);
    return r;
  };
  fake.queue.push_back(with_kind(lease(1, R"({"seconds": 0})"), "sleep"));
  fake.queue.push_back(with_kind(lease(2, R"({"model": "synthetic:gpt2"})"), "speed"));
  fake.queue.push_back(with_kind(lease(3, R"({"seconds": 0})"), "sleep"));
  fake.queue.push_back(with_kind(lease(4, R"({"seconds": 0})"), "sleep"));
  WorkerOptions o = options();
  o.slots = 2;
  o.job_binary = script;
  start(o);
  ASSERT_TRUE(fake.wait(20000, [&] { return fake.completes.size() == 4; }));
  std::lock_guard lock(fake.mu);
  // Each run's [start, end], by run number.
  std::map<int, std::pair<long long, long long>> at;
  std::ifstream in(log);
  std::string what, run;
  long long t = 0;
  while (in >> what >> run >> t) {
    const int id = std::stoi(run.substr(run.rfind("-run") + 4));
    (what == "start" ? at[id].first : at[id].second) = t;
  }
  ASSERT_EQ(at.size(), 4u);
  auto overlap = [&](int a, int b) { return at[a].first < at[b].second && at[b].first < at[a].second; };
  for (int other : {1, 3, 4}) EXPECT_FALSE(overlap(2, other)) << "the timed run 2 overlapped run " << other;
  EXPECT_GT(at[2].first, at[1].second);  // it waited for run 1 to finish
  EXPECT_TRUE(overlap(3, 4));            // the untimed ones after it share the two slots
  // While it waited, its lease was renewed without `running`.
  bool waited = false;
  for (const auto& r : fake.renews) waited = waited || (r.run_id() == 2 && !r.running());
  EXPECT_TRUE(waited);
}

// Cancelled (RenewLease says so) or lost (FAILED_PRECONDITION): the child is killed
// within one renewal interval and nothing is reported for the run.
TEST_F(DaemonTest, CancelKillsTheChildWithinARenewalInterval) {
  fake.lease_ms = 900;  // renew every 300 ms
  fake.queue.push_back(lease(5, R"({"seconds": 30})", 0, 900));
  start(options());
  ASSERT_TRUE(fake.wait(5000, [&] { return !fake.renews.empty(); }));
  pid_t pid = child_pid(5);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(alive(pid));
  auto t0 = Clock::now();
  {
    std::lock_guard lock(fake.mu);
    fake.renew_mode[5] = "cancel";
  }
  while (alive(pid) && Clock::now() - t0 < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  EXPECT_FALSE(alive(pid));
  EXPECT_LE(ms, 300 + 1000) << "bound: lease_ms / 3 + 1 s";
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  std::lock_guard lock(fake.mu);
  EXPECT_TRUE(fake.completes.empty());
  EXPECT_TRUE(fake.fails.empty());
}

TEST_F(DaemonTest, LostLeaseKillsTheChild) {
  fake.lease_ms = 900;
  fake.queue.push_back(lease(6, R"({"seconds": 30})", 0, 900));
  start(options());
  ASSERT_TRUE(fake.wait(5000, [&] { return !fake.renews.empty(); }));
  pid_t pid = child_pid(6);
  ASSERT_GT(pid, 0);
  auto t0 = Clock::now();
  {
    std::lock_guard lock(fake.mu);
    fake.renew_mode[6] = "lost";
  }
  while (alive(pid) && Clock::now() - t0 < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(alive(pid));
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  EXPECT_LE(ms, 1300);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  std::lock_guard lock(fake.mu);
  EXPECT_TRUE(fake.completes.empty());
  EXPECT_TRUE(fake.fails.empty());
}

TEST_F(DaemonTest, RetriesACompletionUntilAcceptedAndRegistersAgain) {
  fake.complete_unavailable = 3;
  fake.queue.push_back(lease(8, R"({"seconds": 0})"));
  start(options());
  ASSERT_TRUE(fake.wait(15000, [&] { return !fake.completes.empty(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::lock_guard lock(fake.mu);
  EXPECT_EQ(fake.completes.size(), 1u);
  EXPECT_EQ(fake.complete_unavailable, 0);
  EXPECT_GE(fake.registers, 2);  // UNAVAILABLE -> registers again before leasing
}

// Three runs finish while the coordinator holds their reports back; once it is back
// (each RegisterWorker makes every report due at once), they go in one CompleteJobs,
// or, to a coordinator without that rpc, a CompleteJob each. Each is recorded once.
void finish_three_held(FakeCoordinator& fake, bool complete_jobs_rpc) {
  fake.complete_jobs_rpc = complete_jobs_rpc;
  fake.hold_completions = true;
  for (int64_t run = 21; run <= 23; ++run) fake.queue.push_back(lease(run, R"({"seconds": 0})"));
}

TEST_F(DaemonTest, CompletionsDueTogetherGoInOneCompleteJobs) {
  finish_three_held(fake, /*complete_jobs_rpc=*/true);
  WorkerOptions o = options();
  o.slots = 3;
  start(o);
  // Held: the three runs' reports are retried together after each registration.
  ASSERT_TRUE(fake.wait(15000, [&] {
    return std::find(fake.batch_sizes.begin(), fake.batch_sizes.end(), 3) != fake.batch_sizes.end();
  }));
  {
    std::lock_guard lock(fake.mu);
    fake.hold_completions = false;
  }
  ASSERT_TRUE(fake.wait(15000, [&] { return fake.completes.size() >= 3; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::lock_guard lock(fake.mu);
  std::set<int64_t> runs;
  for (const auto& c : fake.completes) runs.insert(c.run_id());
  EXPECT_EQ(fake.completes.size(), 3u);  // each once
  EXPECT_EQ(runs, (std::set<int64_t>{21, 22, 23}));
  EXPECT_EQ(fake.unimplemented_calls, 0);
  for (const auto& c : fake.completes) EXPECT_EQ(c.metrics(0).name(), "slept_s");
}

TEST_F(DaemonTest, CompletionsGoOneByOneToACoordinatorWithoutCompleteJobs) {
  finish_three_held(fake, /*complete_jobs_rpc=*/false);
  WorkerOptions o = options();
  o.slots = 3;
  start(o);
  ASSERT_TRUE(fake.wait(15000, [&] { return fake.unimplemented_calls > 0; }));
  {
    std::lock_guard lock(fake.mu);
    fake.hold_completions = false;
  }
  ASSERT_TRUE(fake.wait(15000, [&] { return fake.completes.size() >= 3; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::lock_guard lock(fake.mu);
  std::set<int64_t> runs;
  for (const auto& c : fake.completes) runs.insert(c.run_id());
  EXPECT_EQ(fake.completes.size(), 3u);
  EXPECT_EQ(runs, (std::set<int64_t>{21, 22, 23}));
  EXPECT_EQ(fake.unimplemented_calls, 1);  // asked once, then CompleteJob each
  EXPECT_TRUE(fake.batch_sizes.empty());
}

TEST_F(DaemonTest, WrongTokenExitsWithAnError) {
  fake.token = "right";
  WorkerOptions o = options();
  o.token = "wrong";
  start(o);
  ASSERT_TRUE(wait_exit(10000));
  EXPECT_EQ(exit_code, kWorkerError);
  EXPECT_EQ(fake.registers, 0);
}

TEST_F(DaemonTest, RightTokenIsSent) {
  fake.token = "right";
  WorkerOptions o = options();
  o.token = "right";
  fake.queue.push_back(lease(9, R"({"seconds": 0})"));
  start(o);
  ASSERT_TRUE(fake.wait(10000, [&] { return !fake.completes.empty(); }));
}

TEST_F(DaemonTest, DrainFinishesRunningJobsAndTakesNoNewOnes) {
  fake.queue.push_back(lease(10, R"({"seconds": 1})"));
  WorkerOptions o = options();
  o.slots = 1;
  start(o);
  ASSERT_TRUE(fake.wait(5000, [&] { return !fake.renews.empty(); }));
  {
    std::lock_guard lock(fake.mu);
    fake.queue.push_back(lease(11, R"({"seconds": 0})"));
  }
  signals = 1;
  ASSERT_TRUE(wait_exit(10000));
  EXPECT_EQ(exit_code, kWorkerDrained);
  std::lock_guard lock(fake.mu);
  EXPECT_EQ(fake.drains, 1);
  ASSERT_EQ(fake.completes.size(), 1u);
  EXPECT_EQ(fake.completes[0].run_id(), 10);
  EXPECT_EQ(fake.queue.size(), 1u);  // run 11 was never leased
}

TEST_F(DaemonTest, SecondSignalKillsChildrenAndReportsThemFailed) {
  fake.queue.push_back(lease(12, R"({"seconds": 30})"));
  start(options());
  ASSERT_TRUE(fake.wait(5000, [&] { return !fake.renews.empty(); }));
  pid_t pid = child_pid(12);
  ASSERT_GT(pid, 0);
  signals = 2;
  ASSERT_TRUE(wait_exit(5000));
  EXPECT_EQ(exit_code, kWorkerInterrupted);
  EXPECT_FALSE(alive(pid));
  std::lock_guard lock(fake.mu);
  ASSERT_EQ(fake.fails.size(), 1u);
  EXPECT_EQ(fake.fails[0].run_id(), 12);
  EXPECT_EQ(fake.fails[0].outcome(), "failed");
  EXPECT_NE(fake.fails[0].error().find("second signal"), std::string::npos);
}

// A worker killed by SIGKILL leaves its children running; the next worker on the
// same work dir kills them (they are recognised by their run directory's pid file
// and a command line naming that run's job.json).
TEST_F(DaemonTest, KillsChildrenLeftByAnEarlierWorker) {
  const fs::path run = fs::path(dir) / "work" / "runs" / "00000000000000ff-run99";
  fs::create_directories(run);
  Result<pid_t> orphan =
      spawn_process({"/bin/sh", "-c", "sleep 30", "sh", (run / "job.json").string()}, dir + "/o.out", dir + "/o.err");
  ASSERT_TRUE(orphan.ok()) << orphan.message();
  // The worker recognises its children by their command line: wait until the
  // orphan has exec'd (under load the fork can still show the test's own).
  for (int i = 0; i < 500; ++i) {
    std::ifstream cmd("/proc/" + std::to_string(*orphan) + "/cmdline");
    const std::string line((std::istreambuf_iterator<char>(cmd)), {});
    if (line.find("job.json") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  write_file((run / "pid").string(), std::to_string(*orphan) + "\n");
  // An unrelated process whose pid is in a pid file is left alone.
  const fs::path other = fs::path(dir) / "work" / "runs" / "00000000000000fe-run98";
  fs::create_directories(other);
  Result<pid_t> bystander = spawn_process({"/bin/sleep", "30"}, dir + "/b.out", dir + "/b.err");
  ASSERT_TRUE(bystander.ok());
  write_file((other / "pid").string(), std::to_string(*bystander) + "\n");

  start(options());
  ASSERT_TRUE(fake.wait(5000, [&] { return fake.registers > 0; }));
  ExitInfo e = wait_process(*orphan);
  EXPECT_FALSE(e.exited);
  EXPECT_EQ(e.signal, SIGKILL);
  EXPECT_FALSE(poll_process(*bystander).has_value());  // still running
  terminate_process(*bystander, 100);
}

TEST_F(DaemonTest, MissingDeviceOrJobBinaryIsAnError) {
  WorkerOptions o = options();
  o.device = "cuda:97";
  WorkerDaemon a(o);
  std::atomic<int> sig{0};
  EXPECT_EQ(a.run(sig), kWorkerError);
  o = options();
  o.job_binary = dir + "/no-such-job";
  WorkerDaemon b(o);
  EXPECT_EQ(b.run(sig), kWorkerError);
}

}  // namespace
}  // namespace gb::worker

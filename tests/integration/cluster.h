// The harness of the integration tests: a Cluster that starts the real daemons on
// loopback and kills every one of them (and the gridbench-job children of its
// workers) when it goes out of scope, a gRPC Client, read-only SQLite queries and
// sleep grids. Shared by the tests in this folder; not a test itself.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/subprocess.h"
#include "proto/gridbench.grpc.pb.h"

namespace gb::integration {

namespace fs = std::filesystem;
namespace pb = gridbench::v1;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

inline const std::string kBin = std::string(GB_BINARY_DIR) + "/bin/";

inline std::string temp_dir() {
  auto dir = fs::path(::testing::TempDir()) /
             ("integration_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
              std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// Polls pred every 20 ms until it holds or `ms` pass.
inline bool wait_until(int ms, const std::function<bool()>& pred) {
  auto end = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// A loopback port that was free a moment ago.
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Whether `pid` is a live process (a zombie counts as gone).
inline bool alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// ---- SQLite (read-only) ----

inline int64_t query_int(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  int64_t v = -1;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return v;
}

inline std::vector<std::string> query_strings(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  std::vector<std::string> out;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 5000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char* t = sqlite3_column_text(st, 0);
        out.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
      }
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return out;
}

inline int64_t unfinished(const std::string& db, const std::string& grid) {
  return query_int(db, "SELECT COUNT(*) FROM v_jobs WHERE grid = '" + grid +
                           "' AND state IN ('pending', 'leased', 'running')");
}

// Every job of the grid succeeded, with exactly one succeeded run, which is its
// result run, and exactly `metrics` result rows, all of that run; no other run of
// these jobs has results.
inline void expect_exactly_once(const std::string& db, const std::string& grid, int64_t jobs, int64_t metrics = 1) {
  const std::string in_grid = "(SELECT job_id FROM v_jobs WHERE grid = '" + grid + "')";
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM v_jobs WHERE grid = '" + grid + "'"), jobs);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM v_jobs WHERE grid = '" + grid + "' AND state = 'succeeded'"), jobs);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM runs WHERE state = 'succeeded' AND job_id IN " + in_grid), jobs);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM (SELECT job_id FROM runs WHERE state = 'succeeded' AND job_id IN " +
                              in_grid + " GROUP BY job_id HAVING COUNT(*) <> 1)"),
            0);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM jobs j JOIN runs r ON r.id = j.result_run_id "
                          "WHERE r.state = 'succeeded' AND j.id IN " + in_grid),
            jobs);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM results WHERE run_id IN (SELECT id FROM runs WHERE job_id IN " +
                              in_grid + ")"),
            jobs * metrics);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM results res JOIN jobs j ON j.result_run_id = res.run_id "
                          "WHERE j.id IN " + in_grid),
            jobs * metrics);
  EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM v_results WHERE grid = '" + grid + "'"), jobs * metrics);
}

// ---- processes ----

struct Proc {
  std::string name;
  pid_t pid = 0;
  std::string out, err;  // files
  std::optional<ExitInfo> exit;
};

// Starts processes and kills every one of them (and the workers' children) when it
// goes out of scope.
class Cluster {
 public:
  explicit Cluster(std::string dir) : dir_(std::move(dir)) {}
  ~Cluster() {
    for (auto& [name, p] : procs_) {
      if (!p.exit) {
        kill(-p.pid, SIGKILL);
        kill(p.pid, SIGKILL);
        p.exit = wait_process(p.pid);
      }
    }
    kill_job_children();
    if (::testing::Test::HasFailure()) {
      for (auto& [name, p] : procs_) {
        std::fprintf(stderr, "---- %s stderr (tail) ----\n%s\n", name.c_str(), tail_file(p.err, 6000).c_str());
      }
      std::fprintf(stderr, "(logs, databases and run directories kept in %s)\n", dir_.c_str());
    } else {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const std::string& dir() const { return dir_; }

  Proc& spawn(const std::string& name, const std::vector<std::string>& argv) {
    Proc p;
    p.name = name;
    p.out = dir_ + "/" + name + ".out";
    p.err = dir_ + "/" + name + ".err";
    fs::remove(p.out);
    Result<pid_t> pid = spawn_process(argv, p.out, p.err);
    EXPECT_TRUE(pid.ok()) << (pid.ok() ? "" : pid.message());
    p.pid = pid.ok() ? *pid : -1;
    procs_[name] = p;
    return procs_[name];
  }

  Proc& proc(const std::string& name) { return procs_.at(name); }

  // The gridbench-coordinator on 127.0.0.1:port (0: any); waits for "listening on".
  // Returns the address, "" when it did not come up within 10 s.
  std::string start_coordinator(const std::string& name, const std::string& db, int port, int lease_ms,
                                const std::string& token_file = "", const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {kBin + "gridbench-coordinator", "--listen", "127.0.0.1:" + std::to_string(port),
                                     "--db", db, "--lease-ms", std::to_string(lease_ms)};
    if (!token_file.empty()) argv.insert(argv.end(), {"--token-file", token_file});
    argv.insert(argv.end(), extra.begin(), extra.end());
    Proc& p = spawn(name, argv);
    std::string address;
    wait_until(10000, [&] {
      std::string out = slurp(p.out);
      auto at = out.find("listening on ");
      auto nl = at == std::string::npos ? std::string::npos : out.find('\n', at);
      if (nl != std::string::npos) address = out.substr(at + 13, nl - at - 13);
      return !address.empty() || exited(name);
    });
    EXPECT_FALSE(address.empty()) << name << " did not start: " << slurp(p.err);
    return address;
  }

  Proc& start_worker(const std::string& name, const std::string& coordinator, int slots,
                     const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {kBin + "gridbench-worker", "--coordinator", coordinator,
                                     "--name", name, "--slots", std::to_string(slots),
                                     "--work-dir", dir_ + "/" + name, "--seed", std::to_string(++seed_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return spawn(name, argv);
  }

  bool exited(const std::string& name) {
    Proc& p = procs_.at(name);
    if (!p.exit) p.exit = poll_process(p.pid);
    return p.exit.has_value();
  }

  // Waits up to `ms` for the exit; the exit code (128 + signal when killed), -1 on timeout.
  int wait_exit(const std::string& name, int ms) {
    if (!wait_until(ms, [&] { return exited(name); })) return -1;
    const ExitInfo& e = *procs_.at(name).exit;
    return e.exited ? e.code : 128 + e.signal;
  }

  void signal(const std::string& name, int sig) { kill(procs_.at(name).pid, sig); }

  void kill9(const std::string& name) {
    Proc& p = procs_.at(name);
    kill(p.pid, SIGKILL);
    p.exit = wait_process(p.pid);
  }

  // The gridbench-job children (pid files of the workers' runs) still alive.
  std::vector<pid_t> job_children() {
    std::vector<pid_t> pids;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_, ec); it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (ec) break;
      if (it->path().filename() != "pid") continue;
      pid_t pid = 0;
      std::ifstream in(it->path());
      if (!(in >> pid) || pid <= 0 || !alive(pid)) continue;
      if (slurp("/proc/" + std::to_string(pid) + "/cmdline").find(dir_) == std::string::npos) continue;
      pids.push_back(pid);
    }
    return pids;
  }

  void kill_job_children() {
    for (pid_t pid : job_children()) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
    }
  }

 private:
  std::string dir_;
  std::map<std::string, Proc> procs_;
  int seed_ = 0;
};

// ---- gRPC client ----

class Client {
 public:
  Client(const std::string& address, std::string token = "",
         std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials())
      : stub_(pb::Coordinator::NewStub(grpc::CreateChannel(address, creds))), token_(std::move(token)) {}

  std::unique_ptr<grpc::ClientContext> ctx(int timeout_ms = 10000) {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    if (!token_.empty()) c->AddMetadata("authorization", "Bearer " + token_);
    return c;
  }

  pb::SubmitGridReply submit(const std::string& grid_text) {
    pb::SubmitGridRequest req;
    req.set_grid_text(grid_text);
    req.set_source("grid.json");
    pb::SubmitGridReply reply;
    grpc::Status s = stub_->SubmitGrid(ctx().get(), req, &reply);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return reply;
  }

  // Workers the coordinator lists as active.
  int active_workers() {
    pb::ListWorkersReply reply;
    if (!stub_->ListWorkers(ctx(2000).get(), pb::ListWorkersRequest(), &reply).ok()) return -1;
    int n = 0;
    for (const auto& w : reply.workers()) n += w.state() == "active";
    return n;
  }

  pb::Coordinator::Stub& stub() { return *stub_; }

 private:
  std::unique_ptr<pb::Coordinator::Stub> stub_;
  std::string token_;
};

// A grid of sleep jobs: `values` distinct durations x `repeats`.
inline std::string sleep_grid(const std::string& name, const std::vector<double>& seconds, int repeats = 1) {
  std::string axis;
  for (double s : seconds) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.4f", s);
    axis += (axis.empty() ? "" : ", ") + std::string(buf);
  }
  return R"({"name": ")" + name + R"(", "axes": {"seconds": [)" + axis + R"(]}, "measure": ["sleep"], "repeats": )" +
         std::to_string(repeats) + "}";
}

inline std::vector<double> steps(double first, double step, int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(first + step * i);
  return v;
}

// Runs `gridbench ARGS...` to completion in the cluster; returns the exit code and
// leaves its stdout/stderr in the Proc's files.
inline int gridbench(Cluster& c, const std::string& name, std::vector<std::string> args, int timeout_ms = 60000) {
  args.insert(args.begin(), kBin + "gridbench");
  c.spawn(name, args);
  return c.wait_exit(name, timeout_ms);
}

}  // namespace gb::integration

// grid_scale_bench: what a big theory grid costs at each step, for grids of 1,000,
// 10,000 and 100,000 roofline jobs (by default), printed as one table with the
// growth from each size to the next.
//
// Per size, on a fresh database: `gridbench expand` of the grid file; the real
// coordinator started in this process (gRPC on 127.0.0.1, its theory thread
// computing the jobs) and `gridbench submit` (validate, expand, SubmitGrid); the
// wait until every job has succeeded (the theory thread: lease 1,000, compute,
// store in one transaction); `gridbench status GRID` and `gridbench results GRID
// --format csv` against it; then, with the coordinator stopped, `gridbench results
// --db` as JSON and `gridbench dashboard GRID --db` (the grid's page and report
// files). Each command is the installed CLI (bin/gridbench beside this program),
// so its times include starting the process. Printed: seconds and output bytes per
// step, the database's size (with its WAL) and each figure's growth per size step.
// Not a test: it asserts nothing and times the machine. 100,000 jobs take minutes.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>  // getloadavg
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/subprocess.h"
#include "coordinator/service/service.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// `jobs` roofline jobs: ten Qwen1.5 presets x jobs / 10 contexts.
std::string grid_text(const std::string& name, int jobs) {
  const std::vector<std::string> models = {"qwen1.5-0.5b", "qwen1.5-1.8b", "qwen1.5-4b",  "qwen1.5-7b",
                                           "qwen1.5-14b",  "qwen1.5-32b",  "qwen1.5-72b", "qwen1.5-110b",
                                           "qwen1.5-32b-nogqa", "qwen1.5-110b-nogqa"};
  std::string m, c;
  for (size_t i = 0; i < models.size(); ++i) m += (i ? ", \"" : "\"") + models[i] + "\"";
  const int contexts = std::max(1, jobs / static_cast<int>(models.size()));
  for (int i = 0; i < contexts; ++i) c += (i ? ", " : "") + std::to_string(512 + 8 * i);
  return R"({"name": ")" + name + R"(", "axes": {"model": [)" + m + R"(], "context": [)" + c +
         R"(]}, "fixed": {"weight_format": "f16", "kv_format": "f16", "device": "rtx4090"}, "measure": ["roofline"],
  "report": [{"title": "Decode latency and longest context", "kind": "roofline", "rows": ["model", "context"],
              "columns": [{"metric": "decode_latency_ms", "digits": 3}, {"metric": "max_context", "digits": 0}]}]})";
}

struct Step {
  double secs = -1;
  int64_t bytes = -1;  // its output (stdout, or the files written); -1: none
  bool failed = false;  // the command exited non-zero (its message went to stderr)
};

// Runs `argv` with stdout to `out` (kept for its size); false with a message on a
// non-zero exit.
bool run(const std::vector<std::string>& argv, const fs::path& out, Step* step) {
  const fs::path err = out.string() + ".err";
  const auto t0 = Clock::now();
  gb::Result<pid_t> pid = gb::spawn_process(argv, out.string(), err.string());
  if (!pid.ok()) {
    std::fprintf(stderr, "grid_scale_bench: %s\n", pid.message().c_str());
    return false;
  }
  gb::ExitInfo exit = gb::wait_process(*pid);
  step->secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::error_code ec;
  step->bytes = static_cast<int64_t>(fs::file_size(out, ec));
  std::fprintf(stderr, "grid_scale_bench: %s %s: %.2f s\n", argv[1].c_str(), argv[2].c_str(), step->secs);
  if (!exit.exited || exit.code != 0) {
    step->failed = true;
    std::ifstream in(err);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "grid_scale_bench: %s: %s\n%s\n", argv[1].c_str(), exit.describe().c_str(),
                 text.substr(0, 2000).c_str());
    return false;
  }
  return true;
}

int64_t tree_bytes(const fs::path& dir) {
  int64_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file(ec)) n += static_cast<int64_t>(e.file_size(ec));
  return n;
}

enum StepId { kExpand, kSubmit, kCompute, kStatus, kResultsRpc, kResultsDb, kDashboard, kPage, kReportJson, kDb, kSteps };
const char* const kNames[kSteps] = {"expand (CLI)",         "submit (CLI -> rpc)",   "compute (coordinator)",
                                    "status GRID (rpc)",    "results csv (rpc)",     "results json (--db)",
                                    "dashboard GRID (--db)", "  its index.html",     "  its report.json",
                                    "database + WAL"};

bool measure(const std::string& gridbench, const fs::path& dir, int jobs, std::vector<Step>* steps, int* got) {
  steps->assign(kSteps, Step{});
  fs::create_directories(dir);
  const std::string name = "scale-" + std::to_string(jobs);
  const fs::path grid = dir / (name + ".json");
  std::ofstream(grid) << grid_text(name, jobs);
  const std::string db = (dir / "scale.db").string();

  if (!run({gridbench, "expand", grid.string(), "--format", "json"}, dir / "expand.out", &(*steps)[kExpand]))
    return false;

  gb::coord::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.db_path = db;
  auto server = gb::coord::CoordinatorServer::start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "grid_scale_bench: %s\n", server.message().c_str());
    return false;
  }
  const std::string address = (*server)->address();
  const auto t0 = Clock::now();
  if (!run({gridbench, "submit", grid.string(), "--coordinator", address}, dir / "submit.out", &(*steps)[kSubmit]))
    return false;
  // Done when every job has succeeded (the theory thread computes them). A summary
  // counts every job of the grid under the store's lock, which the theory thread's
  // writes wait for (~50 ms at 100,000 jobs): polled every 20 ms it held the lock
  // most of the time and the figure measured the poller. Now the wait between polls
  // is ten times the last summary's, so polling holds the lock under a tenth of it.
  auto pause = std::chrono::milliseconds(20);
  while (true) {
    const auto asked = Clock::now();
    auto summary = (*server)->store().grid_summary(name);
    pause = std::max(std::chrono::milliseconds(20),
                     std::chrono::duration_cast<std::chrono::milliseconds>(10 * (Clock::now() - asked)));
    if (summary.ok() && summary->has_value()) {
      const auto& by = (*summary)->by_state;
      *got = static_cast<int>((*summary)->total);
      if (by.count("succeeded") && by.at("succeeded") == (*summary)->total) break;
    }
    if (std::chrono::duration<double>(Clock::now() - t0).count() > 3600) {
      std::fprintf(stderr, "grid_scale_bench: %s not done after an hour\n", name.c_str());
      return false;
    }
    std::this_thread::sleep_for(pause);
  }
  (*steps)[kCompute].secs = std::chrono::duration<double>(Clock::now() - t0).count() - (*steps)[kSubmit].secs;
  // From here a failed step is marked in the table and the others still run.
  run({gridbench, "status", name, "--coordinator", address}, dir / "status.out", &(*steps)[kStatus]);
  run({gridbench, "results", name, "--coordinator", address, "--format", "csv"}, dir / "results.csv",
      &(*steps)[kResultsRpc]);
  (*server)->shutdown(1000);
  server->reset();

  run({gridbench, "results", name, "--db", db, "--format", "json"}, dir / "results.json", &(*steps)[kResultsDb]);
  const fs::path out = dir / "dashboard";
  run({gridbench, "dashboard", name, "--db", db, "--out", out.string()}, dir / "dashboard.out",
      &(*steps)[kDashboard]);
  std::error_code ec;
  (*steps)[kDashboard].bytes = tree_bytes(out);
  (*steps)[kPage].bytes = static_cast<int64_t>(fs::file_size(out / "index.html", ec));
  (*steps)[kReportJson].bytes = static_cast<int64_t>(fs::file_size(out / "report.json", ec));
  (*steps)[kDb].bytes =
      static_cast<int64_t>(fs::file_size(db, ec)) + static_cast<int64_t>(fs::file_size(db + "-wal", ec));
  return true;
}

std::string bytes_text(int64_t b) {
  if (b < 0) return "";
  char buf[32];
  if (b < 10000) std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
  else if (b < 10000000) std::snprintf(buf, sizeof buf, "%.1f kB", b / 1e3);
  else std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grid_scale_bench: expand, submit, compute, status, results and dashboard times and output sizes "
               "of roofline grids of growing size"};
  std::vector<int> sizes = {1000, 10000, 100000};
  std::string dir_opt, gridbench;
  bool keep = false;
  app.add_option("--sizes", sizes, "jobs per grid (multiples of 10)")->capture_default_str();
  app.add_option("--dir", dir_opt, "work folder (default: a fresh temporary folder)");
  app.add_option("--gridbench", gridbench, "the gridbench CLI (default: bin/gridbench beside this program)");
  app.add_flag("--keep", keep, "keep the databases and outputs");
  CLI11_PARSE(app, argc, argv);
  if (gridbench.empty()) gridbench = (fs::read_symlink("/proc/self/exe").parent_path() / "gridbench").string();
  const fs::path root = dir_opt.empty() ? fs::temp_directory_path() / ("gb_scale_" + std::to_string(getpid()))
                                        : fs::path(dir_opt);

  double load_start = -1;
  if (getloadavg(&load_start, 1) != 1) load_start = -1;
  std::vector<std::vector<Step>> all;
  std::vector<int> jobs;
  for (int n : sizes) {
    std::vector<Step> steps;
    int got = 0;
    if (!measure(gridbench, root / std::to_string(n), n, &steps, &got)) return 1;
    all.push_back(steps);
    jobs.push_back(got);
    std::fprintf(stderr, "grid_scale_bench: %d jobs done\n", got);
  }

  double load_end[3] = {0, 0, 0};
  if (getloadavg(load_end, 3) != 3) load_end[0] = load_end[1] = load_end[2] = -1;
  std::printf("machine: %u hardware threads, load average %.1f at the start and %.1f %.1f %.1f (1, 5, 15 min) at "
              "the end; roofline grids; times in seconds (CLI steps include starting the process), sizes of what "
              "each step wrote\n",
              std::thread::hardware_concurrency(), load_start, load_end[0], load_end[1], load_end[2]);
  std::printf("%-24s", "step");
  for (int n : jobs) std::printf(" %10d jobs %11s", n, "");
  for (size_t i = 1; i < jobs.size(); ++i) std::printf(" growth %d->%d", jobs[i - 1], jobs[i]);
  std::printf("\n");
  for (int s = 0; s < kSteps; ++s) {
    std::printf("%-24s", kNames[s]);
    for (const auto& steps : all) {
      const Step& st = steps[static_cast<size_t>(s)];
      std::printf(" %9s %-12s", st.failed      ? "FAILED"
                                : st.secs >= 0 ? (std::to_string(st.secs).substr(0, 6) + " s").c_str()
                                               : "",
                  st.failed ? "" : bytes_text(st.bytes).c_str());
    }
    for (size_t i = 1; i < all.size(); ++i) {
      const Step& a = all[i - 1][static_cast<size_t>(s)];
      const Step& b = all[i][static_cast<size_t>(s)];
      std::string g;
      if (a.failed || b.failed) g = "-";
      else if (a.secs > 0 && b.secs >= 0) g += std::to_string(b.secs / a.secs).substr(0, 5) + "x time";
      if (!a.failed && !b.failed && a.bytes > 0 && b.bytes >= 0) g += (g.empty() ? "" : ", ") + std::to_string(double(b.bytes) / a.bytes).substr(0, 5) + "x size";
      std::printf(" %-22s", g.c_str());
    }
    std::printf("\n");
  }
  if (!keep) fs::remove_all(root);
  return 0;
}

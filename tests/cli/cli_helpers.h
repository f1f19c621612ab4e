// Helpers of the CLI tests that run the real binaries as child processes: a temp
// directory per test, running a program with its output captured, files and
// read-only SQLite queries. Not a test itself.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/subprocess.h"

namespace gb::cli_testing {

namespace fs = std::filesystem;

inline const std::string kBin = std::string(GB_BINARY_DIR) + "/bin/";
inline const std::string kSource = GB_SOURCE_DIR;

struct Output {
  int code = -1;
  std::string out;
  std::string err;
};

// A fresh directory named after the test (and the process, so that parallel runs
// of the suite do not share it).
inline std::string temp_dir(const std::string& prefix = "cli_") {
  auto dir = fs::path(::testing::TempDir()) /
             (prefix + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
              std::to_string(::getpid()));
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

// Runs bin/`program` with `args` (and `env` entries NAME=VALUE), in `dir`'s files
// stdout/stderr; the exit code is 128 + the signal when it was killed.
inline Output run_program(const std::string& dir, const std::string& program, const std::vector<std::string>& args,
                          const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv;
  if (!env.empty()) {
    argv.push_back("/usr/bin/env");
    argv.insert(argv.end(), env.begin(), env.end());
  }
  argv.push_back(kBin + program);
  argv.insert(argv.end(), args.begin(), args.end());
  fs::remove(dir + "/stdout");
  fs::remove(dir + "/stderr");
  Result<pid_t> pid = spawn_process(argv, dir + "/stdout", dir + "/stderr");
  if (!pid.ok()) return {};
  ExitInfo e = wait_process(*pid);
  return {e.exited ? e.code : 128 + e.signal, slurp(dir + "/stdout"), slurp(dir + "/stderr")};
}

// Runs bin/gridbench with `args` (and `env` entries NAME=VALUE) in `dir`.
inline Output gridbench(const std::string& dir, const std::vector<std::string>& args,
                        const std::vector<std::string>& env = {}) {
  return run_program(dir, "gridbench", args, env);
}

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

}  // namespace gb::cli_testing

#include "common/subprocess.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

namespace gb {
namespace {

std::string temp_dir() {
  auto dir = std::filesystem::path(::testing::TempDir()) /
             ("subprocess_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::create_directories(dir);
  return dir.string();
}

TEST(Subprocess, ExitCodeAndOutputFiles) {
  std::string d = temp_dir();
  auto pid = spawn_process({"/bin/sh", "-c", "echo out; echo err 1>&2; exit 3"}, d + "/o", d + "/e");
  ASSERT_TRUE(pid.ok()) << pid.message();
  ExitInfo e = wait_process(*pid);
  EXPECT_TRUE(e.exited);
  EXPECT_EQ(e.code, 3);
  EXPECT_EQ(e.describe(), "exit code 3");
  EXPECT_EQ(tail_file(d + "/o", 100), "out");
  EXPECT_EQ(tail_file(d + "/e", 100), "err");
}

TEST(Subprocess, MissingBinaryIsAnError) {
  std::string d = temp_dir();
  auto pid = spawn_process({d + "/no-such-program"}, d + "/o", d + "/e");
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.message().find("no-such-program: cannot execute"), std::string::npos);
}

TEST(Subprocess, TerminateKillsTheProcessGroup) {
  std::string d = temp_dir();
  // The shell's child sleeps too: both must go.
  auto pid = spawn_process({"/bin/sh", "-c", "trap '' TERM; sleep 30 & wait"}, d + "/o", d + "/e");
  ASSERT_TRUE(pid.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(poll_process(*pid).has_value());
  auto t0 = std::chrono::steady_clock::now();
  ExitInfo e = terminate_process(*pid, 300);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_FALSE(e.exited);
  EXPECT_EQ(e.signal, SIGKILL);
  EXPECT_FALSE(process_alive(*pid));
}

TEST(Subprocess, TailFileKeepsWholeLines) {
  std::string d = temp_dir();
  {
    std::ofstream f(d + "/t");
    for (int i = 0; i < 100; ++i) f << "line " << i << "\n";
  }
  std::string t = tail_file(d + "/t", 20);
  EXPECT_EQ(t.rfind("line 99"), t.size() - 7);
  EXPECT_EQ(t.find("line"), 0u);
  EXPECT_EQ(tail_file(d + "/missing", 20), "");
}

}  // namespace
}  // namespace gb

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

TEST(Subprocess, ChildDiesWithItsParent) {
  std::string d = temp_dir();
  // An intermediate process spawns a long sleeper, writes its pid, and is killed.
  pid_t middle = fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    auto pid = spawn_process({"/bin/sleep", "30"}, d + "/o", d + "/e");
    if (!pid.ok()) _exit(1);
    std::ofstream(d + "/pid") << *pid;
    pause();
    _exit(0);
  }
  pid_t sleeper = 0;
  for (int i = 0; i < 200 && sleeper == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::ifstream in(d + "/pid");
    in >> sleeper;
  }
  ASSERT_GT(sleeper, 0);
  EXPECT_TRUE(process_alive(sleeper));
  kill(middle, SIGKILL);
  wait_process(middle);
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // The sleeper is reparented (to init or a subreaper): gone or a zombie.
    std::ifstream stat("/proc/" + std::to_string(sleeper) + "/stat");
    std::string content((std::istreambuf_iterator<char>(stat)), {});
    gone = content.empty() || content.find(") Z") != std::string::npos;
  }
  EXPECT_TRUE(gone);
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

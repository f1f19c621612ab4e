// run_command: stdin in, stdout and stderr out, exit codes, PATH lookup, the time
// limit, and inputs and outputs larger than a pipe's buffer (no deadlock).
#include "common/command.h"

#include <signal.h>

#include <chrono>
#include <cstdlib>

#include <gtest/gtest.h>

namespace gb {
namespace {

TEST(Command, FeedsStdinAndCapturesBothOutputs) {
  Result<CommandOutput> r = run_command({"sh", "-c", "cat; echo oops >&2; exit 3"}, "hello\nworld\n");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(r->exit.exited);
  EXPECT_EQ(r->exit.code, 3);
  EXPECT_EQ(r->out, "hello\nworld\n");
  EXPECT_EQ(r->err, "oops\n");
}

TEST(Command, LargeInputAndOutputDoNotDeadlock) {
  std::string big(3 << 20, 'x');  // 3 MiB: far above a pipe's 64 KiB
  for (size_t i = 0; i < big.size(); i += 100) big[i] = '\n';
  Result<CommandOutput> r = run_command({"cat"}, big);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->exit.code, 0);
  EXPECT_EQ(r->out.size(), big.size());
  EXPECT_TRUE(r->out == big);
}

TEST(Command, ACommandThatIgnoresItsInputDoesNotKillTheCaller) {
  // `true` exits without reading: writing the rest gets EPIPE, which must not
  // raise SIGPIPE in this process.
  Result<CommandOutput> r = run_command({"true"}, std::string(1 << 20, 'y'));
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(r->exit.exited);
  EXPECT_EQ(r->exit.code, 0);
}

TEST(Command, MissingProgramIsAnError) {
  Result<CommandOutput> r = run_command({"gridbench-no-such-program-x"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("gridbench-no-such-program-x: not found on PATH"), std::string::npos) << r.message();
  EXPECT_EQ(find_on_path("gridbench-no-such-program-x"), "");
  EXPECT_EQ(find_on_path("sh").empty(), false);
  EXPECT_EQ(find_on_path("/bin/sh"), "/bin/sh");
}

TEST(Command, TimeLimitKillsIt) {
  const auto t0 = std::chrono::steady_clock::now();
  Result<CommandOutput> r = run_command({"sleep", "20"}, "", 300);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("no exit within 300 ms"), std::string::npos) << r.message();
  EXPECT_LT(s, 5.0);
}

TEST(Command, SignalledExitIsReported) {
  Result<CommandOutput> r = run_command({"sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(r->exit.exited);
  EXPECT_EQ(r->exit.signal, SIGTERM);
}

}  // namespace
}  // namespace gb

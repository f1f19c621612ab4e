// A model that cannot fit in the memory left is refused before anything loads:
// `gridbench generate` exits 3 saying the bytes needed and available, and an
// engine job ends `oom` on its first attempt (engine/jobs/placement.h).
#include <chrono>
#include <string>
#include <vector>

#include "tests/cli/cli_helpers.h"

namespace gb::cli_testing {
namespace {

TEST(CliMemoryFit, GenerateRefusesA110BModelAtOnce) {
  const std::string d = temp_dir();
  const auto t0 = std::chrono::steady_clock::now();
  // 110B parameters as f32 are 440 GB: more than this machine has, and more than 24G.
  Output o = run_program(d, "gridbench", {"generate", "--model", "synthetic:qwen1.5-110b", "--prompt-ids", "1,2",
                                          "--memory-limit", "24G"});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(o.code, 3) << o.err;
  EXPECT_NE(o.err.find("model synthetic:qwen1.5-110b needs at least "), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("but 25769803776 bytes (24.0 GiB) are available (--memory-limit); nothing was loaded"),
            std::string::npos)
      << o.err;
  EXPECT_LT(s, 30.0) << "it should answer before loading anything";
  // Without a limit: this host's MemAvailable (or cgroup) is the bound, and 440 GB exceed it.
  Output host = run_program(d, "gridbench", {"generate", "--model", "synthetic:qwen1.5-110b", "--prompt-ids", "1"});
  EXPECT_EQ(host.code, 3) << host.err;
  EXPECT_NE(host.err.find("are available ("), std::string::npos) << host.err;
  EXPECT_EQ(run_program(d, "gridbench", {"generate", "--model", "synthetic:gpt2", "--prompt-ids", "1",
                                         "--memory-limit", "lots"}).code, 2);
}

// The estimate is the weights at the format's bits (32 as stored) and the KV cache at
// its format's: q4_0 (4.5 bits) needs about a seventh of the f32 figure.
TEST(CliMemoryFit, GenerateCountsTheWeightFormatsBits) {
  const std::string d = temp_dir();
  auto needed = [&](const std::vector<std::string>& extra) -> double {
    std::vector<std::string> args = {"generate", "--model", "synthetic:qwen1.5-110b", "--prompt-ids", "1",
                                     "--memory-limit", "1G"};
    args.insert(args.end(), extra.begin(), extra.end());
    Output o = run_program(d, "gridbench", args);
    EXPECT_EQ(o.code, 3) << o.err;
    const std::string key = "needs at least ";
    const size_t at = o.err.find(key);
    if (at == std::string::npos) return 0;
    return std::stod(o.err.substr(at + key.size()));
  };
  const double as_stored = needed({});
  const double q4 = needed({"--weight-format", "q4_0", "--kv-format", "f16"});
  ASSERT_GT(as_stored, 4e11);  // 110B parameters x 4 bytes
  EXPECT_GT(q4, as_stored * 4.5 / 32 * 0.95) << q4;
  EXPECT_LT(q4, as_stored * 4.5 / 32 * 1.05) << q4;
}

TEST(CliMemoryFit, AnEngineJobThatCannotFitEndsOomWithoutRetries) {
  const std::string d = temp_dir();
  const std::string data = kSource + "/tests/data";
  write_file(d + "/g.json", R"({"name": "tight", "axes": {"kv_format": ["f32"]},
    "fixed": {"model": "hf:)" + data + R"(/golden/gpt2", "prompt_tokens": 4, "gen_tokens": 2},
    "measure": ["speed"]})");
  Output o = run_program(d, "gridbench", {"run", d + "/g.json", "--db", d + "/gb.db", "--out", d + "/out",
                                          "--memory-limit", "64K"});
  EXPECT_EQ(o.code, 0) << o.err;  // oom is an outcome, not a failure of the run
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM jobs WHERE state = 'oom' AND attempts = 1"), 1) << o.err;
  EXPECT_NE(o.err.find("needs at least"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("are available (GRIDBENCH_MEMORY_LIMIT)"), std::string::npos) << o.err;
  // With room, the same job runs.
  Output ok = run_program(d, "gridbench", {"run", d + "/g.json", "--db", d + "/gb.db", "--out", d + "/out",
                                           "--memory-limit", "8G"});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'"), 1) << ok.err;
}

}  // namespace
}  // namespace gb::cli_testing

// `gridbench run` computes theory-only jobs (the roofline) in its own process, in
// batches: no child gridbench-job, no job files, every result stored, and the
// grid's other kinds still run as children.
#include <chrono>
#include <string>
#include <vector>

#include "tests/cli/cli_helpers.h"

namespace gb::cli_testing {
namespace {

// 16 models x 13 weight formats x 2 KV formats x 4 devices x `contexts` contexts.
std::string roofline_grid(const std::string& name, const std::string& contexts, const std::string& extra_measure) {
  return R"({"name": ")" + name + R"(", "axes": {
    "model": ["gpt2", "internlm-7b", "llama-3-8b", "pythia-2.8b", "qwen1.5-0.5b", "qwen1.5-1.8b", "qwen1.5-4b",
              "qwen1.5-7b", "qwen1.5-14b", "qwen1.5-32b", "qwen1.5-32b-nogqa", "qwen1.5-72b", "qwen1.5-110b",
              "qwen1.5-110b-nogqa", "qwen2.5-1.5b", "qwen3-1.7b"],
    "weight_format": ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"],
    "kv_format": ["f16", "bf16"], "device": ["rtx4090", "a100-80g", "h100-sxm", "h200"],
    "context": [)" + contexts + R"(]}, "fixed": {"seconds": 0},
    "measure": ["roofline")" + extra_measure + R"(]})";
}

TEST(CliTheoryInProcess, RooflineJobsRunWithoutChildrenInBatches) {
  const std::string d = temp_dir();
  write_file(d + "/big.json", roofline_grid("big", "1024", R"(, "sleep")"));
  const auto t0 = std::chrono::steady_clock::now();
  Output o = run_program(d, "gridbench", {"run", d + "/big.json", "--db", d + "/gb.db", "--out", d + "/out", "-j", "2"});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(o.code, 0) << o.err.substr(0, 2000);
  // 1,664 roofline jobs and 1 sleep job (its only parameter is fixed).
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM jobs WHERE kind = 'roofline' AND state = 'succeeded'"), 1664);
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM jobs WHERE kind = 'sleep' AND state = 'succeeded'"), 1);
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM runs r JOIN jobs j ON j.id = r.job_id "
                                    "WHERE j.kind = 'roofline' AND r.state = 'succeeded' AND r.engine_version != ''"),
            1664);
  EXPECT_GT(query_int(d + "/gb.db", "SELECT COUNT(*) FROM results"), 1664 * 5);
  // Only the sleep job had a child and its files.
  int job_dirs = 0;
  for (const auto& e : fs::directory_iterator(d + "/out/jobs")) job_dirs += e.is_directory();
  EXPECT_EQ(job_dirs, 1);
  EXPECT_NE(o.out.find("1665 run here (1665 succeeded"), std::string::npos) << o.out;
  std::printf("1,665 jobs through gridbench run in %.2f s\n", s);
  // Reused on a second run, recomputed with --rerun.
  Output again = run_program(d, "gridbench", {"run", d + "/big.json", "--db", d + "/gb.db", "--out", d + "/out"});
  ASSERT_EQ(again.code, 0) << again.err.substr(0, 2000);
  EXPECT_NE(again.out.find("1665 reused"), std::string::npos) << again.out;
}

}  // namespace
}  // namespace gb::cli_testing

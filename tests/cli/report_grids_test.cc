// The report grids (experiments/NNN-*.json, issue 10 section 3) through the real
// binaries: each CPU variant (experiments/cpu/NNN-*.json, the reference model) runs
// through `gridbench run` from another directory (its model and datasets are named
// relative to the grid file) and prints its report's tables with exactly the
// report's columns, every cell filled; each full-size variant expands and validates
// with its ${VAR} models set to existing model directories, says which variable is
// unset when one is, and names the cuda backend. Not here: the figures themselves
// (the kinds' own tests check their arithmetic).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/cli/cli_helpers.h"

namespace gb::cli_testing {
namespace {

using Json = nlohmann::json;

struct ExpectedTable {
  std::string title;
  std::vector<std::string> header;
  size_t rows;
};

struct ReportGrid {
  std::string file;  // experiments/FILE.json (full size) and experiments/cpu/FILE.json
  std::vector<ExpectedTable> tables;
  std::vector<std::string> vars;  // the full-size variant's ${VAR}s
};

const std::vector<ReportGrid>& report_grids() {
  static const std::vector<ReportGrid> grids = {
      {"000-weight-formats",
       {{"Memory and speed by mode and weight format (000's figures)",
         {"kv_cache", "weight_format", "compute", "Model Memory (MB)", "Inference Time (s)", "Throughput (tokens/s)",
          "Peak Memory (MB)"},
         7}},
       {"GPT2_DIR"}},
      {"001-streaming-kv-and-weight-formats",
       {{"Results overview (001's table 1)",
         {"weight_format", "kv_format", "Wiki PPL", "PG19 PPL", "Throughput (tok/s)", "TPOT (ms)", "Avg Attn (ms)",
          "Peak Mem (GB)"},
         4}},
       {"PYTHIA_2_8B_DIR", "WIKITEXT_FILE", "PG19_FILE"}},
      {"002-kv-cache-int8",
       {{"Memory by batch size (002's memory table)",
         {"batch_size", "fp16 memory(MiB)", "int8 memory(MiB)", "diff(MiB)"},
         4},
        {"KV cache bytes by batch size (what the difference is made of)",
         {"batch_size", "fp16 KV(MiB)", "int8 KV(MiB)", "diff(MiB)"},
         4},
        {"Quality with each cache (002's accuracy table layout)",
         {"dataset", "int8", "int8-calib", "fp16", "diff", "calib diff"},
         1},
        {"Accuracy with each cache (002's accuracy table)", {"dataset", "int8", "int8-calib", "fp16", "diff", "calib diff"}, 1}},
       {"INTERNLM_CHAT_7B_DIR", "WIKITEXT_FILE", "C4_JSONL_FILE", "MMLU_DIR"}},
      {"003-decode-roofline-and-limits",
       {{"Decoding: measured W and B against the theory (003 6.4's table)",
         {"model", "weight_format", "BPW", "Prefill (ms)", "W", "W theory/actual", "B (ms)", "B theory/actual",
          "theory W", "theory B (ms)"},
         4},
        {"Longest context within the memory (003 6.3.9 and 6.3.10)",
         {"model", "weight_format", "theory", "static", "dynamic", "paged"},
         4}},
       {"QWEN15_0_5B_DIR", "QWEN15_1_8B_DIR", "QWEN15_4B_DIR", "QWEN15_7B_DIR"}},
      {"004-quantization-error-and-accuracy",
       {{"Task 3.1: every configuration (004's 3.1.3 table; matmul error per shape)",
         {"weight_format", "MMLU (%)", "vs BF16", "MMLU generate (%)", "MC choice-text (%)", "vs BF16 MC", "PPL",
          "vs BF16 PPL", "16x512 error", "100x1024 error"},
         11},
        {"Matrix multiplication error, INT8 against FP8 per tensor (004's 4.4 table)",
         {"shape", "INT8 Error", "FP8 Error", "FP8/INT8 Ratio"},
         2},
        {"Throughput (004's 4.3 table)", {"weight_format", "Prefill (samples/s)", "Decode (tokens/s)"}, 11}},
       {"QWEN3_1_7B_DIR", "WIKITEXT2_FILE", "MMLU_DIR"}},
  };
  return grids;
}

class ReportGridTest : public ::testing::TestWithParam<ReportGrid> {};

std::string name_of(const ::testing::TestParamInfo<ReportGrid>& info) { return "r" + info.param.file.substr(0, 3); }

// The CPU variant runs, from a directory that is not the repository's, to tables
// with exactly the report's columns and rows, every cell of them filled.
TEST_P(ReportGridTest, CpuVariantRunsToTheReportsColumns) {
  const ReportGrid& g = GetParam();
  const std::string d = temp_dir("report_grids_");
  const std::string grid = kSource + "/experiments/cpu/" + g.file + ".json";
  Output o = run_program(d, "gridbench", {"run", grid, "--db", d + "/gb.db", "--out", d + "/out", "-j", "2"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  const Json tables = Json::parse(slurp(d + "/out/report.json"));
  ASSERT_EQ(tables.size(), g.tables.size()) << tables.dump(1);  // no "Failed jobs" table either
  for (size_t i = 0; i < g.tables.size(); ++i) {
    const ExpectedTable& want = g.tables[i];
    const Json& t = tables[i];
    EXPECT_EQ(t["title"], want.title);
    EXPECT_EQ(t["header"].get<std::vector<std::string>>(), want.header) << t.dump(1);
    EXPECT_EQ(t["rows"].size(), want.rows) << t.dump(1);
    for (const Json& row : t["rows"]) {
      ASSERT_EQ(row.size(), want.header.size()) << row.dump();
      for (size_t c = 0; c < row.size(); ++c)
        EXPECT_FALSE(row[c]["text"].get<std::string>().empty()) << t["title"] << " column " << want.header[c]
                                                                << ": " << row.dump();
    }
  }
  const std::string md = slurp(d + "/out/report.md");
  EXPECT_NE(md.find("### " + g.tables[0].title), std::string::npos) << md;
}

// The full-size variant: with every variable set to something that exists (the
// reference model's directory, its held-out text) it expands silently, to cuda
// jobs whose model values stay as written; without them it still expands and
// names each unset variable.
TEST_P(ReportGridTest, FullSizeVariantValidatesWithItsVariables) {
  const ReportGrid& g = GetParam();
  const std::string d = temp_dir("report_grids_full_");
  const std::string grid = kSource + "/experiments/" + g.file + ".json";
  std::vector<std::string> env;
  for (const std::string& v : g.vars) {
    const bool dir = v.size() > 4 && v.substr(v.size() - 4) == "_DIR";
    env.push_back(v + "=" + kSource + "/tests/data/reference_model" + (dir ? "" : "/heldout.txt"));
  }
  Output set = run_program(d, "gridbench", {"expand", grid, "--format", "json"}, env);
  ASSERT_EQ(set.code, 0) << set.err;
  EXPECT_EQ(set.err.find("warning"), std::string::npos) << set.err;
  const Json jobs = Json::parse(set.out)["jobs"];
  ASSERT_GT(jobs.size(), 0u);
  bool any_cuda = false;
  for (const Json& j : jobs) {
    if (!j["params"].contains("backend")) continue;
    EXPECT_EQ(j["params"]["backend"], "cuda") << j.dump();
    any_cuda = true;
    if (j["params"].contains("model")) {
      EXPECT_NE(j["params"]["model"].get<std::string>().find("${"), std::string::npos) << j.dump();
    }
  }
  EXPECT_TRUE(any_cuda);

  // Unset: the grid still expands (a GPU worker may set them) and says which.
  std::vector<std::string> unset = {"-u", g.vars[0]};
  for (size_t i = 1; i < env.size(); ++i) unset.push_back(env[i]);
  Output missing = run_program(d, "gridbench", {"expand", grid}, unset);
  ASSERT_EQ(missing.code, 0) << missing.err;
  EXPECT_NE(missing.err.find("warning: " + grid + ": $."), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("${" + g.vars[0] + "} is not set in the environment"), std::string::npos)
      << missing.err;
  for (size_t i = 1; i < g.vars.size(); ++i)
    EXPECT_EQ(missing.err.find("${" + g.vars[i] + "}"), std::string::npos) << missing.err;

  // Set to a directory without a model: an error naming the value, exit 2.
  if (g.vars[0].size() > 4) {
    std::vector<std::string> empty = env;
    empty[0] = g.vars[0] + "=" + d;
    Output bad = run_program(d, "gridbench", {"expand", grid}, empty);
    EXPECT_EQ(bad.code, 2) << bad.out << bad.err;
    EXPECT_NE(bad.err.find(d), std::string::npos) << bad.err;
  }
}

INSTANTIATE_TEST_SUITE_P(Experiments, ReportGridTest, ::testing::ValuesIn(report_grids()), name_of);

}  // namespace
}  // namespace gb::cli_testing

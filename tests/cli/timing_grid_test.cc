// experiments/cpu-timing.json through the real binaries: the timing kinds as grid
// jobs (speed with and without a KV cache and its op breakdown, decode_curve,
// context_search), run alone although the runner has two slots, their report
// tables with the spread columns, `gridbench series` on the stored curves, and
// `run --backend` leasing only the jobs of its backend.
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/cli/cli_helpers.h"

namespace gb::cli_testing {
namespace {

using Json = nlohmann::json;

// The grid with the model's path made absolute (the file's is relative to the
// repository root) and fewer decode steps; keys in the file's order (axis order).
std::string timing_grid(const std::string& dir) {
  nlohmann::ordered_json g = nlohmann::ordered_json::parse(slurp(kSource + "/experiments/cpu-timing.json"));
  g["fixed"]["model"] = "hf:" + kSource + "/tests/data/golden/llama_gqa";
  g["fixed"]["gen_tokens"] = 8;
  const std::string path = dir + "/cpu-timing.json";
  write_file(path, g.dump(2));
  return path;
}

const Json* table(const Json& tables, const std::string& title) {
  for (const Json& t : tables)
    if (t["title"] == title) return &t;
  return nullptr;
}

TEST(TimingGrid, RunsAndPrintsItsTablesAndSeries) {
  const std::string d = temp_dir("timing_");
  Output o = run_program(d, "gridbench",
                         {"run", timing_grid(d), "--db", d + "/gb.db", "--out", d + "/out", "-j", "2"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  // Every kind of the grid is timed: with 2 slots, still no two runs overlap.
  EXPECT_EQ(query_int(d + "/gb.db",
                      "SELECT COUNT(*) FROM runs a JOIN runs b ON a.id < b.id "
                      "WHERE a.state = 'succeeded' AND b.state = 'succeeded' "
                      "AND a.started_ms < b.finished_ms AND b.started_ms < a.finished_ms"),
            0);
  const Json tables = Json::parse(slurp(d + "/out/report.json"));
  const Json* speed = table(tables, "Decode with and without a KV cache");
  ASSERT_NE(speed, nullptr) << tables.dump();
  ASSERT_EQ((*speed)["rows"].size(), 2u);  // full, none
  // TPOT with its standard deviation over the 2 repeats, throughput with its range.
  const std::string tpot = (*speed)["rows"][0][2]["text"];
  EXPECT_NE(tpot.find(" ± "), std::string::npos) << (*speed)["rows"][0].dump();
  const std::string tput = (*speed)["rows"][0][5]["text"];
  EXPECT_NE(tput.find(" ["), std::string::npos) << (*speed)["rows"][0].dump();
  const Json* curve = table(tables, "Decode latency: fit against the roofline at the measured bandwidth");
  ASSERT_NE(curve, nullptr);
  EXPECT_EQ((*curve)["rows"].size(), 2u);
  const Json* ctx = table(tables, "Longest context in 1 MiB");
  ASSERT_NE(ctx, nullptr);
  ASSERT_EQ((*ctx)["rows"].size(), 2u);  // static, dynamic
  for (const Json& row : (*ctx)["rows"])
    for (size_t c = 1; c < row.size(); ++c) EXPECT_TRUE(row[c]["value"].is_number()) << row.dump();

  // The decode curves: 2 batch sizes x 2 repeats x 8 steps, and a header.
  Output s = run_program(d, "gridbench", {"series", "cpu-timing", "--db", d + "/gb.db", "--metric", "decode_latency"});
  ASSERT_EQ(s.code, 0) << s.err;
  std::istringstream lines(s.out);
  std::string header, line;
  std::getline(lines, header);
  EXPECT_EQ(header, "job_hash,kind,repeat,kv_cache,batch_size,kv_allocation,series,idx,x,y,x_unit,y_unit");
  int n = 0;
  while (std::getline(lines, line)) {
    EXPECT_NE(line.find(",decode_curve,"), std::string::npos) << line;
    ++n;
  }
  EXPECT_EQ(n, 2 * 2 * 8);
  Output j = run_program(d, "gridbench",
                         {"series", "cpu-timing", "--db", d + "/gb.db", "--metric", "decode_step_ms", "--format", "json"});
  ASSERT_EQ(j.code, 0) << j.err;
  EXPECT_EQ(Json::parse(j.out).size(), 2u * 2 * 2);  // speed: kv_cache x batch_size x repeats
  Output bad = run_program(d, "gridbench", {"series", "cpu-timing", "--db", d + "/gb.db", "--metric", "nope"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("decode_latency"), std::string::npos) << bad.err;
}

// `run --backend cuda` offers a CUDA device: the grid's cpu jobs are not leased
// and the run says so; nothing fails.
TEST(TimingGrid, RunLeasesOnlyTheJobsOfItsBackend) {
  const std::string d = temp_dir("timing_");
  Output o = run_program(d, "gridbench",
                         {"run", timing_grid(d), "--db", d + "/gb.db", "--out", d + "/out", "--backend", "cuda"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  EXPECT_NE(o.out.find("0 run here"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("need the cpu backend and stay pending: run them with --backend cpu"), std::string::npos) << o.out;
  EXPECT_EQ(query_int(d + "/gb.db", "SELECT COUNT(*) FROM jobs WHERE state = 'pending' AND req_device = 'cpu'"),
            query_int(d + "/gb.db", "SELECT COUNT(*) FROM jobs"));
  Output wrong = run_program(d, "gridbench", {"run", timing_grid(d), "--db", d + "/gb.db", "--backend", "tpu"});
  EXPECT_EQ(wrong.code, 2);
}

}  // namespace
}  // namespace gb::cli_testing

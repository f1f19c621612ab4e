// `gridbench quant-error` and experiments/quant-004.json as a user runs them: the
// JSON rows {weight_format, shape, rel_error}, reference 004's 4.4 table layout, a
// flag error that names its flag, the grid of 004's Task 3.1 configurations run to
// its report, and the KV rows of `gridbench formats`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_helpers.h"

namespace gb {
namespace {

using namespace cli_testing;
using Json = nlohmann::json;

TEST(QuantErrorCommand, JsonRowsAndReference004sTable) {
  std::string d = temp_dir();
  Output o = gridbench(d, {"quant-error", "--weight-format", "int8-tensor,fp8-tensor", "--shape", "16x512,100x1024",
                           "--format", "json"});
  ASSERT_EQ(o.code, 0) << o.err;
  const Json rows = Json::parse(o.out);
  ASSERT_EQ(rows.size(), 4u) << o.out;
  for (const Json& r : rows) {
    EXPECT_TRUE(r.contains("weight_format") && r.contains("shape") && r.contains("rel_error")) << r.dump();
    EXPECT_GT(r["rel_error"].get<double>(), 0.005) << r.dump();
    EXPECT_LT(r["rel_error"].get<double>(), 0.04) << r.dump();
  }
  EXPECT_EQ(rows[0]["weight_format"], "int8-tensor");
  EXPECT_EQ(rows[1]["shape"], "16x512");
  EXPECT_LT(rows[0]["rel_error"].get<double>(), rows[1]["rel_error"].get<double>());  // INT8 below FP8

  o = gridbench(d, {"quant-error", "--weight-format", "int8-tensor,fp8-tensor", "--shape", "16x512"});
  ASSERT_EQ(o.code, 0) << o.err;
  std::string collapsed;  // the Markdown table's padding collapsed to single spaces
  for (char c : o.out)
    if (c != ' ' || collapsed.empty() || collapsed.back() != ' ') collapsed += c;
  o.out = collapsed;
  EXPECT_NE(o.out.find("| shape | int8-tensor | fp8-tensor | fp8-tensor/int8-tensor |"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("| 16x512 | 0.0"), std::string::npos) << o.out;

  o = gridbench(d, {"quant-error", "--weight-format", "int8-tensor", "--shape", "16by512"});
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find("--shape: expected RxC"), std::string::npos) << o.err;
  o = gridbench(d, {"quant-error", "--weight-format", "int9", "--shape", "16x512"});
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find("--weight-format: unknown weight format 'int9'"), std::string::npos) << o.err;
}

TEST(QuantErrorCommand, OnAModelsTensor) {
  std::string d = temp_dir();
  Output o = gridbench(d, {"quant-error", "--weight-format", "int8-channel,int8-g64", "--model",
                           "hf:" + kSource + "/tests/data/golden/llama_gqa", "--tensor",
                           "model.layers.1.self_attn.q_proj.weight", "--format", "json"});
  ASSERT_EQ(o.code, 0) << o.err;
  const Json rows = Json::parse(o.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["tensor"], "model.layers.1.self_attn.q_proj.weight");
  EXPECT_GT(rows[0]["rel_error"].get<double>(), 0);
}

// 004's Task 3.1 configurations (int8 and fp8 x tensor, row, group 64..512, real and
// fake) as a grid that runs on the CPU, to its report tables.
TEST(QuantErrorCommand, Quant004GridRunsToItsReport) {
  std::string d = temp_dir();
  Output o = gridbench(d, {"run", kSource + "/experiments/quant-004.json", "--db", d + "/gb.db", "--out", d + "/out",
                           "-j", "2"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  const Json tables = Json::parse(slurp(d + "/out/report.json"));
  const Json* all = nullptr;
  for (const Json& t : tables)
    if (t["title"].get<std::string>().rfind("Task 3.1", 0) == 0) all = &t;
  ASSERT_NE(all, nullptr) << tables.dump().substr(0, 500);
  const std::string text = all->dump();
  for (const char* f : {"int8-tensor", "int8-channel", "int8-g64", "int8-g512", "fp8-tensor", "fp8-g256",
                        "fake:int8-g128", "fake:fp8-channel", "bf16"})
    EXPECT_NE(text.find(std::string("\"") + f + "\""), std::string::npos) << f;
  EXPECT_EQ((*all)["rows"].size(), 25u);
  const std::string md = slurp(d + "/out/report.md");
  EXPECT_NE(md.find("INT8 Error"), std::string::npos);
  EXPECT_NE(md.find("FP8 Error"), std::string::npos);
}

TEST(QuantErrorCommand, FormatsPrintsTheKvTable) {
  std::string d = temp_dir();
  Output o = gridbench(d, {"formats"});
  ASSERT_EQ(o.code, 0) << o.err;
  for (const char* row : {"kv format", "int4-g32                 4         5", "int8-calib               8         8",
                          "fp8                      8     8.125"})
    EXPECT_NE(o.out.find(row), std::string::npos) << row << "\n" << o.out;
}

}  // namespace
}  // namespace gb

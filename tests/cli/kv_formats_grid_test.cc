// The KV-cache formats through a grid as a user runs it: a kv_format axis of
// quantized formats (one streaming) and an int8-calib point with its calibration
// file, each job run by gridbench-job, their memory reports counting the scales.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_helpers.h"

namespace gb {
namespace {

using namespace cli_testing;
using Json = nlohmann::json;

TEST(KvFormatsGrid, QuantizedCachesRunThroughGridbenchJob) {
  std::string d = temp_dir();
  // tests/data/golden/qwen3: 2 layers, 2 KV heads of 32.
  write_file(d + "/calib.json", R"({"format": "gridbench-kv-calibration", "version": 1, "keys": "rotated",
    "num_layers": 2, "num_kv_heads": 2,
    "layers": [{"k_min": [-6, -6], "k_max": [6, 6], "v_min": [-2, -2], "v_max": [2, 2]},
               {"k_min": [-6, -6], "k_max": [6, 6], "v_min": [-2, -2], "v_max": [2, 2]}]})");
  write_file(d + "/kv.json", R"({"name": "kv", "axes": {"kv_format": ["f16", "int8", "fp8", "int4-g32+sink4+win28"]},
    "include": [{"kv_format": "int8-calib", "kv_calibration": ")" + d + R"(/calib.json"}],
    "fixed": {"model": "hf:)" + kSource + R"(/tests/data/golden/qwen3", "context": 48},
    "measure": ["memory"],
    "report": {"title": "KV", "kind": "memory", "rows": ["kv_format", "kv_calibration"],
               "columns": [{"metric": "kv_bytes_per_token", "digits": 0}, {"metric": "kv_allocated_bytes", "digits": 0}]}})");
  Output o = run_program(d, "gridbench", {"run", d + "/kv.json", "--db", d + "/gb.db", "--out", d + "/out", "-j", "2"});
  ASSERT_EQ(o.code, 0) << o.out << o.err;
  // The Markdown table with its padding collapsed to single spaces.
  std::string md;
  for (char c : slurp(d + "/out/report.md"))
    if (c != ' ' || md.empty() || md.back() != ' ') md += c;
  // Per token: 2 layers x K and V x 2 heads x (codes + f16 scale and zero point per group).
  for (const char* row : {"| f16 | - | 512 | 24576 |", "| int8 | - | 288 | 13824 |", "| fp8 | - | 272 | 13056 |",
                          "| int4-g32+sink4+win28 | - | 160 | 5120 |"})
    EXPECT_NE(md.find(row), std::string::npos) << row << "\n" << md;
  // int8-calib: codes only per token; its scale tables (2 x 2 x 2 x 2 floats) in the allocation.
  EXPECT_NE(md.find("| int8-calib | " + d + "/calib.json | 256 | " + std::to_string(48 * 256 + 64) + " |"),
            std::string::npos)
      << md;
}

}  // namespace
}  // namespace gb
